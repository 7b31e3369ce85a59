package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.peft.TargetMatrix;

import java.nio.ByteOrder;

/**
 * The deltas' gradient at their slots computed by the JVM, for an engine on the CPU: the paper's Appendix E,
 * {@code dphi_j = sum_t dY[t, r_j] X[t, c_j]}, as one dot product over the tokens per slot between row {@code r_j}
 * of {@code dY^T} and row {@code c_j} of {@code X^T}, both copied out of the engine once per layer ({@link SlotDots}).
 *
 * <p>Why on the host: PyTorch's CPU kernels have no sampled product (SDDMM), the engine's gathered form
 * ({@link GatheredGradient}) writes and reads {@code [k, T]} operands and pays only at densities below 0.3 %, and the
 * dense {@code dY^T X} costs a whole forward product per layer. Dot products over contiguous rows run at about
 * 9 GFLOP/s in the JVM on this project's 2 cores.
 *
 * <p>Cost, per token, in units of one multiply-add of the dense product (measured on this project's 2-core machine,
 * PyTorch 2.7.1 CPU through DJL, shapes 768x768, 2048x768 and 768x2048 at T = 512 and 1024): copying one row of
 * {@code dY^T} or {@code X^T} out (an engine transpose, then a copy into the JVM) about {@link #COPY_COST}, one slot's
 * dot product about {@link #DOT_COST}. At 1.65 % density (LoRA rank 8's budget) on 2048x768 and T = 512 that is
 * about 5 ms against the dense product's 20 ms.
 *
 * <p>The sums run in another order than the GEMM's, so this form agrees with the dense product to float32 rounding,
 * not bit for bit; a given configuration always takes the same form ({@link SlotGradientForm}).
 */
final class HostSlotGradient {
    static final int COPY_COST = 80;
    static final int DOT_COST = 12;

    /** {@code dY^T} and {@code X^T} of the layer at hand, reused from layer to layer (grown to the largest). */
    private float[] outputGradientT = new float[0];
    private float[] inputT = new float[0];
    /** The input whose transpose {@link #inputT} holds: layers that share an input share its copy. */
    private NDArray inputOfCopy;
    /** The layer's slots and their gradient, reused too: a step allocates nothing in the JVM per layer. */
    private long[] slotsOnHost = new long[0];
    private float[] gradient = new float[0];

    /** Whether {@code tokens} rows of {@code matrix}'s input and output fit a Java array. */
    static boolean fits(long tokens, TargetMatrix matrix) {
        return tokens * Math.max(matrix.rows(), matrix.cols()) < Integer.MAX_VALUE - 8;
    }

    /**
     * The gradient at {@code slots} (flat {@code row * cols + col}, int64 on the engine) from the layer's output
     * gradient {@code dy} {@code [T, rows]} and input {@code x} {@code [T, cols]}, float32, as a float32 array in
     * {@code scope}. {@code input} is the array {@code x} views: the copy of {@code X^T} is reused while it stays
     * the same.
     */
    NDArray atSlots(NDArray dy, NDArray x, NDArray input, NDArray slots, TargetMatrix matrix, NDManager scope) {
        int tokens = Math.toIntExact(dy.getShape().get(0));
        outputGradientT = transposed(dy, outputGradientT, scope);
        if (input != inputOfCopy) {
            inputT = transposed(x, inputT, scope);
            inputOfCopy = input;
        }
        int k = Math.toIntExact(slots.size());
        if (slotsOnHost.length < k) {
            slotsOnHost = new long[k];
            gradient = new float[k];
        }
        slots.toByteBuffer(true).order(ByteOrder.nativeOrder()).asLongBuffer().get(slotsOnHost, 0, k);
        SlotDots.compute(outputGradientT, inputT, tokens, slotsOnHost, k, matrix.cols(), gradient);
        return EngineArrays.of(scope, gradient, k);
    }

    /** {@code a}'s transpose, row-major, in {@code buffer} if it is large enough, else in a new array. */
    private static float[] transposed(NDArray a, float[] buffer, NDManager scope) {
        if (a.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException("the host form reads float32 activations, got " + a.getDataType());
        }
        int n = Math.toIntExact(a.size());
        float[] into = buffer.length >= n ? buffer : new float[n];
        try (NDManager copy = scope.newSubManager()) {
            // reshape copies the transposed view into a contiguous engine array, which the JVM then reads in place
            NDArray t = EngineArrays.borrow(a, copy).transpose().reshape(-1);
            t.toByteBuffer(true).order(ByteOrder.nativeOrder()).asFloatBuffer().get(into, 0, n);
        }
        return into;
    }
}
