package dev.spiel4j.optim.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.engine.EngineArrays;

/**
 * SM3 (Anil et al., 2019) restricted to the active slots of a sparse delta on an {@code [rows, cols]} matrix, on
 * engine arrays: a row accumulator {@code r[rows]} and a column accumulator {@code c[cols]} (float32, in a
 * sub-manager of the manager given at construction until {@link #close()}) replace Adam's per-element second moments.
 *
 * <p>For each slot at (i, j) with gradient g: {@code nu = min(r[i], c[j]) + g^2}; then {@code r[i]} becomes the max
 * of nu over the slots in row i and {@code c[j]} the max over the slots in column j (rows and columns without a
 * slot keep their value); the slot moves by {@code -lr * g / sqrt(nu + eps)} after decoupled weight decay
 * {@code phi *= 1 - lr * wd}. No per-slot state, so regrown slots need no optimizer reset.
 *
 * <p>The per-row and per-column maxima without a scatter-max (DJL has none), exact and independent of the order in
 * which any operation visits the slots: the slots are grouped by row (and by column), and each nu is written to its
 * own cell of a {@code [groups, largest group]} array filled with -inf; the maximum of each row of that array is
 * written to the group's accumulator entry. Every write goes to a distinct position, so no result depends on which of
 * two writes to the same place wins. The grouping (each slot's cell, each group's row or column) depends on the slots
 * only, so it is worked out on the engine ({@code unique}, {@code argSort}) when the slots array changes, a
 * reselection, and kept until then: sorting every step cost about 3 ms per matrix of 16k slots on one CPU core, the
 * kept grouping costs 8 bytes per slot (a cell by row and one by column) and 8 per occupied row and column (counted
 * in {@link #stateBytes()}). The padded array is transient and holds at most the matrix's size, usually about k
 * cells.
 *
 * <p>Precision: nu and the accumulators are the same float32 operations as the host reference (bit for bit); the
 * slot update rounds its square root and quotient to float32 where the reference keeps doubles.
 */
public final class Sm3 implements AutoCloseable {
    private final int rows;
    private final int cols;
    private final float eps;
    private final float weightDecay;
    private final NDManager state;
    private final NDArray r;
    private final NDArray c;
    /** The slots array {@link #byRow} and {@link #byCol} were worked out from (identity), or null. */
    private NDArray groupedSlots;
    /** Holds the kept grouping. */
    private NDManager grouping;
    private Groups byRow;
    private Groups byCol;

    public Sm3(NDManager manager, int rows, int cols, float eps, float weightDecay) {
        if (rows <= 0 || cols <= 0 || !(eps > 0) || !(weightDecay >= 0)) {
            throw new IllegalArgumentException("SM3 needs a positive shape, eps > 0, weight decay >= 0; got ["
                    + rows + ", " + cols + "] eps=" + eps + " weightDecay=" + weightDecay);
        }
        this.rows = rows;
        this.cols = cols;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.state = manager.newSubManager();
        this.r = state.zeros(new Shape(rows), DataType.FLOAT32);
        this.c = state.zeros(new Shape(cols), DataType.FLOAT32);
    }

    /**
     * One update of every slot.
     *
     * @param slots     int64 flat {@code row * cols + col} index of every slot (distinct). The grouping worked out from
     *                  it is kept for as long as the same array object comes: a change of the slots must come as a new
     *                  array (as {@code SparseDelta} makes one per change), never as an in-place write
     * @param params    float32 slot values, updated in place
     * @param grads     slot gradients
     * @param gradScale applied to every gradient first (clipping)
     */
    public void step(NDArray slots, NDArray params, NDArray grads, float lr, float gradScale) {
        long k = slots.size();
        if (params.size() != k || grads.size() != k || params.getDataType() != DataType.FLOAT32
                || slots.getDataType() != DataType.INT64) {
            throw new IllegalArgumentException("SM3 got " + k + " " + slots.getDataType() + " slots, "
                    + params.size() + " " + params.getDataType() + " params and " + grads.size() + " gradients");
        }
        if (k == 0) {
            return;
        }
        if (slots != groupedSlots) {
            group(slots);
        }
        try (NDManager scope = state.newSubManager()) {
            NDArray flat = EngineArrays.borrow(slots, scope).reshape(-1);
            NDArray width = EngineArrays.scalar(scope, cols).toType(DataType.INT64, false);
            NDArray col = flat.mod(width);
            NDArray row = rowOf(flat, col, width);
            NDArray rS = EngineArrays.borrow(r, scope);
            NDArray cS = EngineArrays.borrow(c, scope);

            NDArray g = EngineArrays.borrow(grads, scope).reshape(-1).mul(EngineArrays.scalar(scope, gradScale));
            NDArray nu = rS.take(scope, row).minimum(cS.take(scope, col)).add(g.mul(g));
            // both maxima read nu, which was computed from the old accumulators, before either is written
            NDArray rowMax = byRow.max(scope, nu);
            NDArray colMax = byCol.max(scope, nu);
            rS.set(new NDIndex("{}", byRow.ids), rowMax);
            cS.set(new NDIndex("{}", byCol.ids), colMax);

            NDArray p = EngineArrays.borrow(params, scope).reshape(-1);
            NDArray update = g.mul(EngineArrays.scalar(scope, lr)).div(nu.add(EngineArrays.scalar(scope, eps)).sqrt());
            p.muli(EngineArrays.scalar(scope, 1f - lr * weightDecay)).subi(update);
        }
    }

    /** The row of each flat index, given its column: {@code (flat - col) / cols}, exact in float64. */
    private static NDArray rowOf(NDArray flat, NDArray col, NDArray width) {
        return flat.sub(col).toType(DataType.FLOAT64, false).div(width.toType(DataType.FLOAT64, false))
                .toType(DataType.INT64, false);
    }

    /** Works out and keeps the grouping of {@code slots} by row and by column. */
    private void group(NDArray slots) {
        if (grouping != null) {
            grouping.close();
        }
        grouping = state.newSubManager();
        try (NDManager scope = grouping.newSubManager()) {
            NDArray flat = EngineArrays.borrow(slots, scope).reshape(-1);
            NDArray width = EngineArrays.scalar(scope, cols).toType(DataType.INT64, false);
            NDArray col = flat.mod(width);
            byRow = Groups.of(rowOf(flat, col, width), grouping);
            byCol = Groups.of(col, grouping);
        }
        groupedSlots = slots;
    }

    /**
     * The slots grouped by a key (row or column): the distinct keys {@code ids} (ascending, int64), and for each slot
     * its cell (int32) in a {@code [groups, widest]} array whose row g holds the slots of group g.
     */
    private record Groups(NDArray ids, NDArray cells, long groups, long widest) {
        /** The grouping of {@code key} (one per slot, in a scope that closes after the call), kept in {@code into}. */
        static Groups of(NDArray key, NDManager into) {
            NDManager scope = key.getManager();
            NDList u = key.unique(true, true, true);
            NDArray ids = u.get(0);
            NDArray inverse = u.get(1);
            NDArray counts = u.get(2);
            long widest = counts.max().getLong();
            NDArray order = inverse.argSort(); // slots by group; the order within a group does not matter
            NDArray group = inverse.take(scope, order);
            // 1-based position in that order (a cumulative sum of ones: exact, where arange goes through a float)
            NDArray ordinal = scope.ones(new Shape(key.size()), DataType.INT64).cumSum(0);
            NDArray one = EngineArrays.scalar(scope, 1).toType(DataType.INT64, false);
            NDArray firstOfGroup = counts.cumSum(0).sub(counts).add(one);
            NDArray rank = ordinal.sub(firstOfGroup.take(scope, group));
            NDArray cellInOrder = group.mul(EngineArrays.scalar(scope, widest).toType(DataType.INT64, false)).add(rank);
            // back to slot order: order is a permutation, so every position is written once
            NDArray cells = scope.zeros(new Shape(key.size()), DataType.INT64);
            cells.set(new NDIndex("{}", order), cellInOrder);
            NDArray keptIds = ids.duplicate();
            keptIds.attach(into);
            NDArray keptCells = cells.toType(DataType.INT32, false);
            keptCells.attach(into);
            return new Groups(keptIds, keptCells, ids.size(), widest);
        }

        /** The maximum of {@code values} (one per slot) over each group, exactly (see the class comment). */
        NDArray max(NDManager scope, NDArray values) {
            // scatter (no two cells alike) rather than an indexed write: a third of the time on the CPU. The cells
            // are widened to the int64 scatter takes here, in the step's scope: given the kept int32 array, DJL would
            // attach its int64 copy to the kept array's manager, 8 bytes per slot and step until the next reselection
            NDArray index = EngineArrays.borrow(cells, scope).toType(DataType.INT64, false);
            NDArray padded = scope.full(new Shape(groups * widest), Float.NEGATIVE_INFINITY, DataType.FLOAT32)
                    .scatter(index, values, 0);
            return padded.reshape(groups, widest).max(new int[]{1});
        }

        long bytes() {
            return 8L * ids.size() + 4L * cells.size();
        }
    }

    /** The row accumulator (a host copy). */
    public float[] rowAccumulator() {
        return r.toFloatArray();
    }

    public float[] columnAccumulator() {
        return c.toFloatArray();
    }

    public void restore(float[] rowAcc, float[] colAcc) {
        if (rowAcc.length != rows || colAcc.length != cols) {
            throw new IllegalArgumentException("SM3 state for [" + rows + ", " + cols + "] cannot take accumulators of "
                    + rowAcc.length + " and " + colAcc.length);
        }
        EngineArrays.copyInto(r, rowAcc);
        EngineArrays.copyInto(c, colAcc);
    }

    /**
     * The persistent state: one float32 per row and per column, and the kept grouping of the slots (8 bytes per slot,
     * 8 per occupied row and column) once a step has seen them.
     */
    public long stateBytes() {
        return 4L * (rows + cols) + (byRow == null ? 0 : byRow.bytes() + byCol.bytes());
    }

    @Override
    public void close() {
        state.close();
    }
}
