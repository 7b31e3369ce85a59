package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.peft.TargetMatrix;

/**
 * The deltas' gradient without the dense {@code dL/dW' = dY^T X}: the paper's Appendix E,
 * {@code dphi_j = sum_t dY[t, r_j] X[t, c_j]} for the slot at row {@code r_j}, column {@code c_j}, computed by
 * gathering the slots' rows of {@code dY^T} and columns' rows of {@code X^T} ({@code [k, T]} each, in chunks that
 * bound the memory) and summing their products over the tokens.
 *
 * <p>When it pays: both forms are linear in the tokens T; the dense product costs {@code rows x cols x T}
 * multiply-adds at GEMM speed, the gathered one {@code k x T} at gather speed, about {@link #GATHER_COST} times
 * slower per multiply-add on the engine's CPU kernels. Measured on this project's 2-core machine (PyTorch 2.7.1
 * CPU, shapes 768x768, 2048x768 and 768x2048, T = 128 and 512, densities 0.1 % to 10 %): the gathered form took
 * 0.25-0.4x the dense product's time at 0.1 % density, 0.6-0.8x at 0.3 %, 2-5x at 1 % and 23-43x at 10 %, i.e.
 * {@code time ratio ~ 300 x density}. The sum over T runs in another order than the GEMM's, so the two forms agree
 * to float32 rounding, not bit for bit; a given configuration always takes the same form ({@link SlotGradientForm}).
 */
final class GatheredGradient {
    /** Gathered multiply-adds per dense GEMM multiply-add of equal time, measured as the class comment says. */
    static final int GATHER_COST = 300;
    /** Elements of one gathered {@code [chunk, T]} operand: 16 MiB of float32. */
    private static final long CHUNK_ELEMENTS = 1 << 22;

    private GatheredGradient() {
    }

    /**
     * The gradient at {@code slots} (flat {@code row * cols + col}, int64 on the engine) from the layer's output
     * gradient {@code dy} {@code [T, rows]} and input {@code x} {@code [T, cols]}, float32, attached to dy's manager.
     */
    static NDArray atSlots(NDArray dy, NDArray x, NDArray slots, TargetMatrix matrix) {
        NDManager scope = dy.getManager();
        long tokens = dy.getShape().get(0);
        NDArray dyT = dy.transpose().duplicate();                       // [rows, T], rows contiguous
        NDArray xT = x.transpose().duplicate();                         // [cols, T]
        NDArray index = slots.stopGradient(); // a handle in this scope: ops on it must not land in the slots' owner
        index.attach(scope);
        NDArray cols = index.mod(EngineArrays.scalar(scope, matrix.cols(), DataType.INT64));
        // (index - col) / cols is exact in float64 (indices < 2^53), not in float32
        NDArray rows = index.sub(cols).toType(DataType.FLOAT64, false)
                .div(EngineArrays.scalar(scope, matrix.cols(), DataType.FLOAT64)).toType(DataType.INT64, false);
        long k = index.getShape().get(0);
        long chunk = Math.max(1, CHUNK_ELEMENTS / Math.max(1, tokens));
        NDArray out = null;
        for (long from = 0; from < k; from += chunk) {
            String range = from + ":" + Math.min(k, from + chunk);
            NDArray part = dyT.get(new NDIndex("{}", rows.get(range))).mul(xT.get(new NDIndex("{}", cols.get(range))))
                    .sum(new int[]{1});
            out = out == null ? part : out.concat(part);
        }
        return out;
    }
}
