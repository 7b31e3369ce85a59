package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.EngineArrays;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.peft.TargetMatrix;

import java.util.Arrays;
import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * The sparse delta of one weight matrix, host side: {@code k} slots, each a flat index {@code row * cols + col}
 * into the {@code [rows, cols]} matrix and a float32 value. Slots are stable: reselection changes a slot's index and
 * resets its value but never moves slots, so per-slot optimizer state stays aligned. Indices are unique.
 */
public final class SparseDelta {
    private final TargetMatrix matrix;
    private final long[] indices;
    private final float[] values;

    private SparseDelta(TargetMatrix matrix, long[] indices, float[] values) {
        this.matrix = matrix;
        this.indices = indices;
        this.values = values;
    }

    /** {@code k} distinct positions drawn uniformly at random (Floyd's algorithm, O(k) memory), all values 0. */
    public static SparseDelta random(TargetMatrix matrix, int k, SplittableRandom rng) {
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
        return new SparseDelta(matrix, idx, new float[k]);
    }

    /** A delta with the given slots (resuming); validates range and uniqueness. */
    public static SparseDelta of(TargetMatrix matrix, long[] indices, float[] values) {
        if (indices.length != values.length) {
            throw new IllegalArgumentException(matrix.module() + ": " + indices.length + " indices but "
                    + values.length + " values");
        }
        SparseDelta d = new SparseDelta(matrix, indices.clone(), values.clone());
        d.checkIndices();
        return d;
    }

    public TargetMatrix matrix() {
        return matrix;
    }

    public String module() {
        return matrix.module();
    }

    public int size() {
        return indices.length;
    }

    public long[] indices() {
        return indices.clone();
    }

    public float[] values() {
        return values.clone();
    }

    /** |value| of every slot. */
    public float[] absValues() {
        float[] a = new float[values.length];
        for (int i = 0; i < a.length; i++) {
            a[i] = Math.abs(values[i]);
        }
        return a;
    }

    /** Direct read access for the step's hot paths (no copy per step and layer); callers must not modify it. */
    long[] indexArray() {
        return indices;
    }

    /** Direct access for the optimizer, which updates values in place. */
    float[] mutableValues() {
        return values;
    }

    /** Applies a reselection: each listed slot gets its new index and value 0. */
    public void replace(SelectionDecision decision) {
        int[] slots = decision.slots();
        long[] idx = decision.newIndices();
        for (int i = 0; i < slots.length; i++) {
            indices[slots[i]] = idx[i];
            values[slots[i]] = 0f;
        }
        checkIndices();
    }

    /** Overwrites every slot (resuming from saved state); validates before changing anything. */
    void restore(long[] newIndices, float[] newValues) {
        SparseDelta checked = of(matrix, newIndices, newValues);
        if (checked.size() != indices.length) {
            throw new IllegalArgumentException(matrix.module() + ": state holds " + checked.size()
                    + " deltas, the method has " + indices.length);
        }
        System.arraycopy(checked.indices, 0, indices, 0, indices.length);
        System.arraycopy(checked.values, 0, values, 0, values.length);
    }

    private void checkIndices() {
        BitSet seen = new BitSet(Math.toIntExact(matrix.size()));
        for (long i : indices) {
            if (i < 0 || i >= matrix.size() || seen.get((int) i)) {
                throw new IllegalStateException(matrix.module() + ": index " + i + " is out of range or duplicated");
            }
            seen.set((int) i);
        }
    }

    /**
     * The effective weight {@code W + scatter(indices, values)} as a new float32 array in {@code scope}, W untouched
     * (for bases that cannot hold the delta in place, see {@link MergedWeight}).
     */
    public NDArray effectiveWeight(NDManager scope, NDArray weight) {
        NDArray flat = scope.zeros(new Shape(matrix.size()), DataType.FLOAT32)
                .scatter(EngineArrays.of(scope, indices), EngineArrays.of(scope, values), 0);
        NDArray w = flat.reshape(matrix.rows(), matrix.cols()).add(weight);
        return w.getDataType() == DataType.FLOAT32 ? w : w.toType(DataType.FLOAT32, false);
    }

    /** The delta as a checkpoint value. */
    public DeltaTensor toDeltaTensor() {
        return new DeltaTensor(matrix.module(), matrix.rows(), matrix.cols(), indices, values);
    }

    @Override
    public String toString() {
        return "SparseDelta[" + matrix + ", k=" + indices.length + ", first=" + Arrays.toString(
                Arrays.copyOf(indices, Math.min(4, indices.length))) + "]";
    }
}
