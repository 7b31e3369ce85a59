package dev.spiel4j.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.io.HostTensor;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Adds a sparse fine-tuning into live weights ({@code W += scatter(delta)}) or takes it out again
 * ({@code W -= scatter(delta)}), in place, so inference runs at dense speed. The weights map is keyed by canonical
 * weight name ({@code module + ".weight"}); call {@link SparseFineTuning#requireBase} first, since the map does
 * not know which base it holds.
 *
 * <p>Every module is checked before any weight is touched, so a bad fine-tuning leaves the weights as they were.
 * Temporaries live in a sub-manager of each weight's manager and are freed per module.
 */
public final class SparseMerge {
    private SparseMerge() {
    }

    /**
     * {@code W += scatter(indices, values)} for every module. The delta is cast to the weight's dtype first: merge
     * into float32 weights when the deltas are small relative to the weights, since float16 rounds them coarsely.
     *
     * @throws IllegalArgumentException naming the weight when one is missing or has another shape
     */
    public static void merge(SparseFineTuning sft, Map<String, NDArray> weights) {
        addScaled(sft, weights, 1f);
    }

    /** {@code W -= scatter(indices, values)}: undoes {@link #merge} up to float rounding (~1 ulp of W). */
    public static void unmerge(SparseFineTuning sft, Map<String, NDArray> weights) {
        addScaled(sft, weights, -1f);
    }

    private static void addScaled(SparseFineTuning sft, Map<String, NDArray> weights, float sign) {
        for (DeltaTensor d : sft.deltas()) {
            weight(weights, d);
        }
        for (DeltaTensor d : sft.deltas()) {
            NDArray w = weight(weights, d);
            float[] values = d.values();
            for (int j = 0; j < values.length; j++) {
                values[j] *= sign;
            }
            try (NDManager scope = w.getManager().newSubManager()) {
                NDArray idx = scope.create(d.indices());
                NDArray val = scope.create(values).toType(w.getDataType(), false);
                NDArray dense = scope.zeros(new Shape((long) d.rows() * d.cols()), w.getDataType())
                        .scatter(idx, val, 0)
                        .reshape(w.getShape());
                w.addi(dense);
            }
        }
    }

    private static NDArray weight(Map<String, NDArray> weights, DeltaTensor d) {
        String name = d.module() + ".weight";
        NDArray w = weights.get(name);
        if (w == null) {
            throw new IllegalArgumentException("no weight '" + name + "' to merge the delta of " + d.module() + " into");
        }
        if (!w.getShape().equals(new Shape(d.rows(), d.cols()))) {
            throw new IllegalArgumentException("weight '" + name + "' has shape " + w.getShape() + " but the delta is ["
                    + d.rows() + ", " + d.cols() + "]");
        }
        return w;
    }

    /**
     * The base tensors with the deltas added, as float32 host tensors (other tensors widened unchanged). Refuses a
     * fine-tuning of another base. Holds every tensor as float32; {@link SftExport#writeMergedModel} streams instead.
     */
    public static Map<String, HostTensor> mergeOnHost(SparseFineTuning sft, Map<String, HostTensor> base,
                                                      String baseFingerprint) {
        Map<String, DeltaTensor> deltas = hostDeltas(sft, base, baseFingerprint);
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (HostTensor t : base.values()) {
            out.put(t.name(), SparseFineTuningFile.floatTensor(t.name(), t.shape(), merged(t, deltas.get(t.name()))));
        }
        return out;
    }

    /** Weight name to its delta, after checking the base and that every delta's weight exists with its shape. */
    static Map<String, DeltaTensor> hostDeltas(SparseFineTuning sft, Map<String, HostTensor> base,
                                               String baseFingerprint) {
        sft.requireBase(baseFingerprint);
        Map<String, DeltaTensor> out = new LinkedHashMap<>();
        for (DeltaTensor d : sft.deltas()) {
            String name = d.module() + ".weight";
            HostTensor t = base.get(name);
            if (t == null || !Arrays.equals(t.shape(), new long[]{d.rows(), d.cols()})) {
                throw new IllegalArgumentException("base has no weight '" + name + "' of shape [" + d.rows() + ", "
                        + d.cols() + "]");
            }
            out.put(name, d);
        }
        return out;
    }

    /** The tensor as float32 with the delta (may be null) added. */
    static float[] merged(HostTensor t, DeltaTensor delta) {
        float[] w = t.toFloats();
        if (delta != null) {
            long[] idx = delta.indices();
            float[] val = delta.values();
            for (int j = 0; j < idx.length; j++) {
                w[(int) idx[j]] += val[j];
            }
        }
        return w;
    }
}
