package dev.spiel4j.peft;

import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Conversions between Java arrays and {@link HostTensor}s for method state and exports. */
public final class HostArrays {
    private HostArrays() {
    }

    public static HostTensor f32(String name, long[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return new HostTensor(name, shape, HostDType.F32, b);
    }

    public static HostTensor i64(String name, long[] values) {
        ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(values);
        return new HostTensor(name, new long[]{values.length}, HostDType.I64, b);
    }

    public static HostTensor i32(String name, int[] values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(values);
        return new HostTensor(name, new long[]{values.length}, HostDType.I32, b);
    }

    public static long[] longs(HostTensor t) {
        require(t, HostDType.I64);
        long[] out = new long[Math.toIntExact(t.numel())];
        t.data().duplicate().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
        return out;
    }

    public static int[] ints(HostTensor t) {
        require(t, HostDType.I32);
        int[] out = new int[Math.toIntExact(t.numel())];
        t.data().duplicate().order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
        return out;
    }

    public static float[] floats(HostTensor t) {
        require(t, HostDType.F32);
        return t.toFloats();
    }

    private static void require(HostTensor t, HostDType dtype) {
        if (t.dtype() != dtype) {
            throw new IllegalArgumentException("state tensor '" + t.name() + "' is " + t.dtype() + ", expected " + dtype);
        }
    }
}
