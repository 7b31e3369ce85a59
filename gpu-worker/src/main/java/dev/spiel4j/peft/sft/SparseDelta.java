package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.EngineArrays;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.peft.TargetMatrix;

import java.util.Arrays;
import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * The sparse delta of one weight matrix: {@code k} slots, each a flat index {@code row * cols + col} into the
 * {@code [rows, cols]} matrix and a float32 value. Indices and values live only on the engine (the optimizer updates
 * the values in place every step; the indices are uploaded once per change); reselection, checkpoints and exports
 * copy them to the host when they read them, so the host holds no second copy of the indices (8 bytes per slot for
 * the whole run). Slots are stable: reselection changes a slot's index and resets its value but
 * never moves slots, so per-slot optimizer state stays aligned. Indices are unique. The engine arrays belong to a
 * sub-manager of the manager given at creation until {@link #close()}.
 */
public final class SparseDelta implements AutoCloseable {
    private final TargetMatrix matrix;
    private final NDManager held;
    /** The slots' flat indices (int64 {@code [k]}), replaced when they change. */
    private NDArray slots;
    private final NDArray values;

    private SparseDelta(TargetMatrix matrix, long[] indices, NDManager manager) {
        this.matrix = matrix;
        this.held = manager.newSubManager();
        this.slots = EngineArrays.of(held, indices);
        this.values = held.zeros(new Shape(indices.length), DataType.FLOAT32);
    }

    /**
     * {@code k} distinct positions drawn uniformly at random (Floyd's algorithm, O(k) memory), all values 0, held in a
     * sub-manager of {@code manager}.
     */
    public static SparseDelta random(TargetMatrix matrix, int k, SplittableRandom rng, NDManager manager) {
        long size = matrix.size();
        if (k < 0 || k > size) {
            throw new IllegalArgumentException(matrix.module() + ": cannot place " + k + " deltas in " + size + " weights");
        }
        BitSet chosen = new BitSet(Math.toIntExact(size)); // a bit per weight: no boxing, size / 8 bytes transient
        for (long j = size - k; j < size; j++) {
            int t = (int) rng.nextLong(j + 1);
            chosen.set(chosen.get(t) ? (int) j : t);
        }
        long[] idx = chosen.stream().asLongStream().toArray(); // ascending
        return new SparseDelta(matrix, idx, manager);
    }

    public TargetMatrix matrix() {
        return matrix;
    }

    public String module() {
        return matrix.module();
    }

    public int size() {
        return Math.toIntExact(slots.size());
    }

    /** The slots' indices (a host copy). */
    public long[] indices() {
        return slots.toLongArray();
    }

    /** The values (a host copy). */
    public float[] values() {
        return values.toFloatArray();
    }

    /** |value| of every slot (a host copy, for reselection). */
    public float[] absValues() {
        float[] a = values();
        for (int i = 0; i < a.length; i++) {
            a[i] = Math.abs(a[i]);
        }
        return a;
    }

    /** The indices on the engine (int64 {@code [k]}), valid until the next change of the indices. */
    NDArray slots() {
        return slots;
    }

    /** The values on the engine (float32 {@code [k]}), updated in place by the optimizer. */
    NDArray valueArray() {
        return values;
    }

    /** Applies a reselection: each listed slot gets its new index and value 0. */
    public void replace(SelectionDecision decision) {
        int[] changed = decision.slots();
        if (changed.length == 0) {
            return;
        }
        long[] next = indices();
        long[] idx = decision.newIndices();
        long[] at = new long[changed.length];
        for (int i = 0; i < changed.length; i++) {
            next[changed[i]] = idx[i];
            at[i] = changed[i];
        }
        checkIndices(matrix, next);
        try (NDManager scope = held.newSubManager()) {
            EngineArrays.borrow(values, scope).set(new NDIndex("{}", EngineArrays.of(scope, at)),
                    scope.zeros(new Shape(at.length), DataType.FLOAT32));
        }
        setIndices(next);
    }

    /** Overwrites every slot (resuming from saved state); validates before changing anything. */
    void restore(long[] newIndices, float[] newValues) {
        if (newIndices.length != size() || newValues.length != size()) {
            throw new IllegalArgumentException(matrix.module() + ": state holds " + newIndices.length + " indices and "
                    + newValues.length + " values, the method has " + size() + " deltas");
        }
        checkIndices(matrix, newIndices);
        EngineArrays.copyInto(values, newValues);
        setIndices(newIndices);
    }

    private void setIndices(long[] newIndices) {
        NDArray old = slots;
        slots = EngineArrays.of(held, newIndices);
        old.close();
    }

    private static void checkIndices(TargetMatrix matrix, long[] indices) {
        BitSet seen = new BitSet(Math.toIntExact(matrix.size()));
        for (long i : indices) {
            if (i < 0 || i >= matrix.size() || seen.get((int) i)) {
                throw new IllegalStateException(matrix.module() + ": index " + i + " is out of range or duplicated");
            }
            seen.set((int) i);
        }
    }

    /** Releases the engine arrays. */
    @Override
    public void close() {
        held.close();
    }

    /**
     * The effective weight {@code W + scatter(indices, values)} as a new float32 array in {@code scope}, W untouched
     * (for bases that cannot hold the delta in place, see {@link MergedWeight}). The dense intermediates (the zeros
     * and the scattered delta) are freed before this returns instead of living as long as {@code scope}.
     */
    public NDArray effectiveWeight(NDManager scope, NDArray weight) {
        try (NDManager work = scope.newSubManager()) {
            NDArray flat = work.zeros(new Shape(matrix.size()), DataType.FLOAT32).scatter(slots, values, 0);
            NDArray w = flat.reshape(matrix.rows(), matrix.cols()).add(weight);
            if (w.getDataType() != DataType.FLOAT32) {
                w = w.toType(DataType.FLOAT32, false);
            }
            w.attach(scope);
            return w;
        }
    }

    /** The delta as a checkpoint value. */
    public DeltaTensor toDeltaTensor() {
        return new DeltaTensor(matrix.module(), matrix.rows(), matrix.cols(), indices(), values());
    }

    @Override
    public String toString() {
        long[] first = slots.get("0:" + Math.min(4, size())).toLongArray();
        return "SparseDelta[" + matrix + ", k=" + size() + ", first=" + Arrays.toString(first) + "]";
    }
}
