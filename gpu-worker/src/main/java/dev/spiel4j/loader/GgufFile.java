package dev.spiel4j.loader;

import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.HostDType;
import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parsed header of a GGUF file (v2 or v3, little-endian): metadata, tensor directory and where the tensor data
 * starts. Every count, length, dimension and offset is checked against the file size while parsing, so a lying
 * header fails here with a {@link ModelFormatException} instead of causing a huge allocation later. Tensor data is
 * not read: {@link #map(Path, TensorInfo)} memory-maps one tensor on demand.
 *
 * <p>Metadata values become Java objects: every integer type a {@link Long} (uint64 above 2^63 wraps), FLOAT32 a
 * {@link Float}, FLOAT64 a {@link Double}, BOOL a {@link Boolean}, STRING a {@link String}, ARRAY a {@link List}.
 */
record GgufFile(int version, Map<String, Object> metadata, List<TensorInfo> tensors, long dataStart, long fileSize) {

    static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
    static final int DEFAULT_ALIGNMENT = 32;

    /** ggml tensor type names by id; null where an id was never or is no longer assigned. */
    private static final String[] GGML_TYPES = {
            "F32", "F16", "Q4_0", "Q4_1", null, null, "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
            "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",
            "I32", "I64", "F64", "IQ1_M", "BF16", null, null, null, "TQ1_0", "TQ2_0", null, null, null, "MXFP4"};

    /** One tensor directory entry; {@code dims} in GGUF order (fastest-varying first). */
    record TensorInfo(String name, long[] dims, int ggmlType, long offset) {
        /** The row-major shape, slowest dimension first, as PyTorch and {@link HostTensor} use it. */
        long[] shape() {
            long[] s = new long[dims.length];
            for (int i = 0; i < dims.length; i++) {
                s[i] = dims[dims.length - 1 - i];
            }
            return s;
        }

        String typeName() {
            return ggmlTypeName(ggmlType);
        }

        /** The host type, or null when spiel4j cannot read this ggml type (quantized, integer, F64). */
        HostDType hostType() {
            return switch (ggmlType) {
                case 0 -> HostDType.F32;
                case 1 -> HostDType.F16;
                case 30 -> HostDType.BF16;
                default -> null;
            };
        }
    }

    static String ggmlTypeName(int id) {
        String n = id >= 0 && id < GGML_TYPES.length ? GGML_TYPES[id] : null;
        return n != null ? n : "unknown ggml type " + id;
    }

    /** Parses and validates the header of {@code file}. */
    static GgufFile read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(size, Integer.MAX_VALUE - 8))
                    .order(ByteOrder.LITTLE_ENDIAN);
            return new Parser(file, buf, size).parse();
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read GGUF file: " + e.getMessage(), e);
        }
    }

    /** Memory-maps the bytes of one tensor (already validated to lie inside the file). */
    ByteBuffer map(Path file, TensorInfo t, HostDType type) {
        long bytes = HostTensor.numel(t.shape()) * type.bytes();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return ch.map(FileChannel.MapMode.READ_ONLY, dataStart + t.offset(), bytes).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot map tensor '" + t.name() + "': " + e.getMessage(), e);
        }
    }

    /** Bounds-checked reading of the header; every failure names the item being read. */
    private static final class Parser {
        private static final int MAX_ARRAY_DEPTH = 4;
        private static final int MAX_DIMS = 4;
        private final Path file;
        private final ByteBuffer buf;
        private final long fileSize;

        Parser(Path file, ByteBuffer buf, long fileSize) {
            this.file = file;
            this.buf = buf;
            this.fileSize = fileSize;
        }

        GgufFile parse() {
            try {
                return parseUnchecked();
            } catch (BufferUnderflowException e) {
                throw fail("truncated header (file has " + fileSize + " bytes)");
            }
        }

        private GgufFile parseUnchecked() {
            need(24, "the GGUF preamble (magic, version, counts)");
            int magic = buf.getInt();
            if (magic != MAGIC) {
                throw fail(String.format("not a GGUF file (magic 0x%08x, expected 0x%08x \"GGUF\")", magic, MAGIC));
            }
            int version = buf.getInt();
            if (version != 2 && version != 3) {
                throw fail("unsupported GGUF version " + Integer.toUnsignedString(version) + " (supported: 2, 3)");
            }
            long tensorCount = buf.getLong();
            long kvCount = buf.getLong();
            // smallest possible entries: a kv is key length + type + 1 byte, a tensor info is 24 bytes
            if (kvCount < 0 || kvCount > buf.remaining() / 13) {
                throw fail("metadata count " + Long.toUnsignedString(kvCount) + " is impossible for a file of "
                        + fileSize + " bytes");
            }
            if (tensorCount < 0 || tensorCount > buf.remaining() / 24) {
                throw fail("tensor count " + Long.toUnsignedString(tensorCount) + " is impossible for a file of "
                        + fileSize + " bytes");
            }
            Map<String, Object> metadata = new LinkedHashMap<>();
            for (long i = 0; i < kvCount; i++) {
                String key = string("metadata key #" + i);
                int type = u32("type of metadata '" + key + "'");
                if (metadata.put(key, value(type, "metadata '" + key + "'", 0)) != null) {
                    throw fail("duplicate metadata key '" + key + "'");
                }
            }
            List<TensorInfo> infos = new ArrayList<>();
            for (long i = 0; i < tensorCount; i++) {
                infos.add(tensorInfo(i));
            }
            long alignment = alignment(metadata);
            long headerEnd = buf.position();
            long dataStart = (headerEnd + alignment - 1) / alignment * alignment;
            for (TensorInfo t : infos) {
                checkData(t, alignment, dataStart);
            }
            return new GgufFile(version, Collections.unmodifiableMap(metadata), List.copyOf(infos), dataStart,
                    fileSize);
        }

        private TensorInfo tensorInfo(long index) {
            String name = string("name of tensor #" + index);
            int nDims = u32("dimension count of tensor '" + name + "'");
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw fail("tensor '" + name + "' has " + Integer.toUnsignedString(nDims) + " dimensions (1.."
                        + MAX_DIMS + " allowed)");
            }
            need(8L * nDims + 12, "the dimensions of tensor '" + name + "'");
            long[] dims = new long[nDims];
            for (int d = 0; d < nDims; d++) {
                dims[d] = buf.getLong();
                if (dims[d] <= 0 || dims[d] > fileSize) {
                    throw fail("tensor '" + name + "' has impossible dimension " + Long.toUnsignedString(dims[d]));
                }
            }
            int type = buf.getInt();
            long offset = buf.getLong();
            return new TensorInfo(name, dims, type, offset);
        }

        private void checkData(TensorInfo t, long alignment, long dataStart) {
            HostDType type = t.hostType();
            if (type == null) {
                return; // refused by name in GgufReader, which knows whether the tensor is needed
            }
            long bytes;
            try {
                bytes = Math.multiplyExact(HostTensor.numel(t.shape()), type.bytes());
            } catch (ArithmeticException e) {
                throw fail("tensor '" + t.name() + "' " + Arrays.toString(t.dims()) + " is impossibly large");
            }
            if (bytes > Integer.MAX_VALUE) {
                throw fail("tensor '" + t.name() + "' has " + bytes + " bytes; tensors over 2 GiB are not supported");
            }
            if (t.offset() < 0 || t.offset() % alignment != 0) {
                throw fail("tensor '" + t.name() + "' data offset " + Long.toUnsignedString(t.offset())
                        + " is not a multiple of the alignment " + alignment);
            }
            long end = dataStart + t.offset() + bytes;
            if (end > fileSize || end < 0) {
                throw fail("tensor '" + t.name() + "' (" + bytes + " bytes at data offset " + t.offset()
                        + ") extends past the end of the file (" + fileSize + " bytes): truncated file or bad offset");
            }
        }

        private long alignment(Map<String, Object> metadata) {
            Object a = metadata.get("general.alignment");
            if (a == null) {
                return DEFAULT_ALIGNMENT;
            }
            if (!(a instanceof Long v) || v <= 0 || Long.bitCount(v) != 1 || v > (1 << 20)) {
                throw fail("general.alignment " + a + " must be a positive power of two");
            }
            return v;
        }

        private Object value(int type, String what, int depth) {
            return switch (type) {
                case 0 -> (long) Byte.toUnsignedInt(get(1, what).get());
                case 1 -> (long) get(1, what).get();
                case 2 -> (long) Short.toUnsignedInt(get(2, what).getShort());
                case 3 -> (long) get(2, what).getShort();
                case 4 -> Integer.toUnsignedLong(get(4, what).getInt());
                case 5 -> (long) get(4, what).getInt();
                case 6 -> get(4, what).getFloat();
                case 7 -> {
                    byte b = get(1, what).get();
                    if (b != 0 && b != 1) {
                        throw fail(what + " is a bool with value " + b);
                    }
                    yield b == 1;
                }
                case 8 -> string(what);
                case 9 -> array(what, depth);
                case 10, 11 -> get(8, what).getLong();
                case 12 -> get(8, what).getDouble();
                default -> throw fail(what + " has unknown value type " + Integer.toUnsignedString(type));
            };
        }

        private List<Object> array(String what, int depth) {
            if (depth >= MAX_ARRAY_DEPTH) {
                throw fail(what + " nests arrays deeper than " + MAX_ARRAY_DEPTH);
            }
            int elemType = u32("element type of " + what);
            long count = u64("length of " + what);
            long minElem = switch (elemType) {
                case 0, 1, 7 -> 1;
                case 2, 3 -> 2;
                case 4, 5, 6 -> 4;
                default -> 8; // strings and arrays carry at least a u64 length; 64-bit scalars are 8 bytes
            };
            if (count < 0 || count > buf.remaining() / minElem) {
                throw fail(what + " claims " + Long.toUnsignedString(count) + " elements, more than the "
                        + buf.remaining() + " bytes left in the header can hold");
            }
            List<Object> out = new ArrayList<>((int) count);
            for (long i = 0; i < count; i++) {
                out.add(value(elemType, what + "[" + i + "]", depth + 1));
            }
            return Collections.unmodifiableList(out);
        }

        private String string(String what) {
            long len = u64("length of " + what);
            if (len < 0 || len > buf.remaining()) {
                throw fail(what + " claims a string of " + Long.toUnsignedString(len) + " bytes, but only "
                        + buf.remaining() + " bytes remain");
            }
            ByteBuffer slice = buf.slice(buf.position(), (int) len);
            buf.position(buf.position() + (int) len);
            try {
                return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(slice).toString();
            } catch (CharacterCodingException e) {
                throw fail(what + " is not valid UTF-8");
            }
        }

        private int u32(String what) {
            return get(4, what).getInt();
        }

        private long u64(String what) {
            return get(8, what).getLong();
        }

        private ByteBuffer get(int bytes, String what) {
            need(bytes, what);
            return buf;
        }

        private void need(long bytes, String what) {
            if (buf.remaining() < bytes) {
                throw fail("truncated while reading " + what + " at byte " + buf.position() + " (file has "
                        + fileSize + " bytes)");
            }
        }

        private ModelFormatException fail(String problem) {
            return new ModelFormatException(file, problem);
        }
    }
}
