package dev.spiel4j.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.Function;

/**
 * The one place where engine arrays are made from host data or from Java numbers. Everything it returns lives in
 * memory the engine owns.
 *
 * <p>Why this matters: on the CPU, DJL's {@code NDManager.create(...)} wraps a Java direct buffer without copying it
 * ({@code torch::from_blob}); only the created Java array keeps that buffer reachable. DJL's number-argument ops
 * ({@code mul(2f)}, {@code div(n)}, ...) create such a 0-d array, run the op and close it at once. Autograd, views
 * and in-place {@code set(Buffer)} can still point at the memory afterwards; once a garbage collection frees the buffer
 * (glibc reuses it at once) the backward pass reads garbage: NaN, a crash, or a finite, silently wrong gradient. So
 * host data is copied into engine memory here, scalars are made by the engine ({@code full}), and in-place writes go
 * engine to engine. No other code calls {@code create} on a manager or an op with a number argument
 * ({@code EngineArraysGuardTest} checks the sources).
 */
public final class EngineArrays {
    private static final NDIndex ALL = new NDIndex("...");

    private EngineArrays() {
    }

    /** A float32 0-d array holding {@code value}, for use as an op's operand (float32 keeps every dtype's result type). */
    public static NDArray scalar(NDManager manager, double value) {
        return manager.full(new Shape(), (float) value, DataType.FLOAT32);
    }

    /**
     * A 0-d array of {@code type} holding {@code value}, where the operand's type matters: an int64 operand keeps
     * int64 arithmetic int64 (a float32 scalar would promote it to float32, inexact above 2^24). The engine fills it
     * from a float, so {@code value} must be exactly representable as one (|integers| up to 2^24).
     */
    public static NDArray scalar(NDManager manager, long value, DataType type) {
        if ((long) (float) value != value) {
            throw new IllegalArgumentException(value + " is not exactly representable as the float the engine fills from");
        }
        return manager.full(new Shape(), (float) value, type);
    }

    public static NDArray of(NDManager manager, float[] data, Shape shape) {
        return owned(manager.create(data, shape));
    }

    public static NDArray of(NDManager manager, float[] data) {
        return owned(manager.create(data));
    }

    /**
     * A float32 {@code [length]} array holding {@code data[0..length)}, written straight into the engine's memory
     * where the engine shows it to the JVM (on the CPU): no Java buffer on the way, so a step that makes many of
     * these leaves nothing for a collection to free.
     */
    public static NDArray of(NDManager manager, float[] data, int length) {
        NDArray array = manager.create(new Shape(length), DataType.FLOAT32); // uninitialized: every element is written
        ByteBuffer memory = array.toByteBuffer(true);
        if (!memory.isDirect()) { // a copy, not the array's memory (a GPU)
            array.close();
            return of(manager, Arrays.copyOf(data, length));
        }
        memory.order(ByteOrder.nativeOrder()).asFloatBuffer().put(data, 0, length);
        return array;
    }

    public static NDArray of(NDManager manager, long[] data, Shape shape) {
        return owned(manager.create(data, shape));
    }

    public static NDArray of(NDManager manager, long[] data) {
        return owned(manager.create(data));
    }

    public static NDArray of(NDManager manager, int[] data, Shape shape) {
        return owned(manager.create(data, shape));
    }

    public static NDArray of(NDManager manager, int[] data) {
        return owned(manager.create(data));
    }

    /** {@code data} (its remaining bytes, in native order for multi-byte types) as a {@code type} array. */
    public static NDArray of(NDManager manager, Buffer data, Shape shape, DataType type) {
        return owned(manager.create(data, shape, type));
    }

    /** Overwrites {@code target} in place with {@code values} (row-major), so every reference to it sees them. */
    public static void copyInto(NDArray target, float[] values) {
        copyInto(target, values.length, scratch -> of(scratch, values, target.getShape()));
    }

    /** As {@link #copyInto(NDArray, float[])} for integer arrays (optimizer ages). */
    public static void copyInto(NDArray target, int[] values) {
        copyInto(target, values.length, scratch -> of(scratch, values, target.getShape()));
    }

    private static void copyInto(NDArray target, int length, Function<NDManager, NDArray> source) {
        if (length != target.size()) {
            throw new IllegalArgumentException(length + " values for an array of shape " + target.getShape());
        }
        try (NDManager scratch = target.getManager().newSubManager()) {
            target.set(ALL, source.apply(scratch).toType(target.getDataType(), false));
        }
    }

    /**
     * A second handle on {@code array}'s memory (same storage, shape and type, no gradient history) owned by
     * {@code scope}. DJL attaches an op's result to its first operand's manager, so ops on a long-lived array (a
     * weight, optimizer state) would pile their results up in that manager until it closes; ops on the borrowed handle
     * attach them to {@code scope} instead, and in-place ops on it ({@code muli}, {@code subi}, {@code set}) write
     * the long-lived array. Closing the handle leaves the array alone.
     */
    public static NDArray borrow(NDArray array, NDManager scope) {
        NDArray handle = array.stopGradient();
        handle.attach(scope);
        return handle;
    }

    /** Overwrites every element of {@code target} with {@code value} in place (for clearing: {@code muli(0)} keeps NaN). */
    public static void fill(NDArray target, float value) {
        try (NDManager scratch = target.getManager().newSubManager()) {
            target.set(ALL, scratch.full(new Shape(), value, target.getDataType()));
        }
    }

    /**
     * An engine-owned copy of a freshly created array, which is closed. On a GPU the created array already is a copy
     * in device memory.
     */
    private static NDArray owned(NDArray javaBacked) {
        if (javaBacked.getDevice().isGpu()) {
            return javaBacked;
        }
        try (javaBacked) {
            return javaBacked.duplicate();
        }
    }
}
