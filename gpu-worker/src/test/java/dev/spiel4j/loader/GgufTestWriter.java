package dev.spiel4j.loader;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/** Writes small GGUF files for tests, following the GGUF spec independently of the reader. */
final class GgufTestWriter {
    /** A tensor to write: dims in GGUF order (fastest first), ggml type id, raw little-endian bytes. */
    record Tensor(String name, long[] ggmlDims, int type, byte[] data) {
    }

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    static byte[] write(int version, Map<String, Object> metadata, List<Tensor> tensors, int alignment) {
        GgufTestWriter w = new GgufTestWriter();
        w.u32(0x46554747);
        w.u32(version);
        w.u64(tensors.size());
        w.u64(metadata.size());
        metadata.forEach((key, value) -> {
            w.string(key);
            w.u32(typeOf(value));
            w.value(value);
        });
        long offset = 0;
        for (Tensor t : tensors) {
            w.string(t.name());
            w.u32(t.ggmlDims().length);
            for (long d : t.ggmlDims()) {
                w.u64(d);
            }
            w.u32(t.type());
            w.u64(offset);
            offset = align(offset + t.data().length, alignment);
        }
        w.pad(alignment);
        for (Tensor t : tensors) {
            w.out.writeBytes(t.data());
            w.pad(alignment);
        }
        return w.out.toByteArray();
    }

    private static long align(long v, int alignment) {
        return (v + alignment - 1) / alignment * alignment;
    }

    private void pad(int alignment) {
        while (out.size() % alignment != 0) {
            out.write(0);
        }
    }

    private static int typeOf(Object v) {
        if (v instanceof Long l) {
            return l >= 0 && l <= 0xFFFFFFFFL ? 4 : 11;
        }
        if (v instanceof Float) {
            return 6;
        }
        if (v instanceof Double) {
            return 12;
        }
        if (v instanceof Boolean) {
            return 7;
        }
        if (v instanceof String) {
            return 8;
        }
        if (v instanceof List) {
            return 9;
        }
        throw new IllegalArgumentException("no GGUF type for " + v.getClass());
    }

    private void value(Object v) {
        switch (typeOf(v)) {
            case 4 -> u32((int) (long) (Long) v);
            case 11 -> u64((Long) v);
            case 6 -> bytes(4, b -> b.putFloat((Float) v));
            case 12 -> bytes(8, b -> b.putDouble((Double) v));
            case 7 -> out.write((Boolean) v ? 1 : 0);
            case 8 -> string((String) v);
            default -> {
                List<?> list = (List<?>) v;
                int elemType = list.isEmpty() ? 8 : typeOf(list.get(0));
                // integers in one array share a type: int32 is what GGUF uses for token types
                u32(elemType == 4 || elemType == 11 ? 5 : elemType);
                u64(list.size());
                for (Object e : list) {
                    if (e instanceof Long l) {
                        u32((int) (long) l);
                    } else {
                        value(e);
                    }
                }
            }
        }
    }

    private void string(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        u64(b.length);
        out.writeBytes(b);
    }

    private void u32(int v) {
        bytes(4, b -> b.putInt(v));
    }

    private void u64(long v) {
        bytes(8, b -> b.putLong(v));
    }

    private void bytes(int n, java.util.function.Consumer<ByteBuffer> put) {
        ByteBuffer b = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
        put.accept(b);
        out.writeBytes(b.array());
    }
}
