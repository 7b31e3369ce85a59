package dev.spiel4j.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.EngineArrays;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.io.HostTensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Adds a sparse fine-tuning into live weights ({@code W += scatter(delta)}) or takes it out again
 * ({@code W -= scatter(delta)}), in place, so inference runs at dense speed. The weights map is keyed by canonical
 * weight name ({@code module + ".weight"}); call {@link SparseFineTuning#requireBase} first, since the map does
 * not know which base it holds.
 *
 * <p>{@link #merge} returns the values it overwrote; {@link #restore} puts them back exactly, whereas
 * {@link #unmerge} subtracts and leaves float rounding behind. Every module is checked before any weight is
 * touched, so a bad fine-tuning leaves the weights as they were.
 * Temporaries live in a sub-manager of each weight's manager and are freed per module.
 */
public final class SparseMerge {
    private SparseMerge() {
    }

    /**
     * {@code W += scatter(indices, values)} for every module. The delta is cast to the weight's dtype first: merge
     * into float32 weights when the deltas are small relative to the weights, since float16 rounds them coarsely.
     *
     * @return the values the merge overwrote, so that {@link #restore} can undo it exactly
     * @throws IllegalArgumentException naming the weight when one is missing or has another shape
     */
    public static Originals merge(SparseFineTuning sft, Map<String, NDArray> weights) {
        List<DeltaTensor> saved = new ArrayList<>();
        for (DeltaTensor d : sft.deltas()) {
            NDArray w = weight(weights, d);
            try (NDManager scope = w.getManager().newSubManager()) {
                float[] host = hostFloats(w, scope);
                long[] idx = d.indices();
                float[] before = new float[idx.length];
                for (int j = 0; j < idx.length; j++) {
                    before[j] = host[Math.toIntExact(idx[j])];
                }
                saved.add(new DeltaTensor(d.module(), d.rows(), d.cols(), idx, before));
            }
        }
        addScaled(sft, weights, 1f);
        return new Originals(saved);
    }

    /**
     * {@code W -= scatter(indices, values)}: undoes {@link #merge} up to float rounding (about 1 ulp of the merged
     * weight per touched element); {@link #restore} undoes it exactly.
     */
    public static void unmerge(SparseFineTuning sft, Map<String, NDArray> weights) {
        addScaled(sft, weights, -1f);
    }

    /**
     * The weights' values at a merged fine-tuning's indices from before the merge (float32, which holds float16
     * weights exactly), per module as a {@link DeltaTensor} whose values are the originals.
     */
    public record Originals(List<DeltaTensor> values) {
        public Originals {
            values = List.copyOf(values);
        }
    }

    /** Writes the saved values back, so the weights are bit for bit what they were before {@link #merge}. */
    public static void restore(Originals originals, Map<String, NDArray> weights) {
        for (DeltaTensor d : originals.values()) {
            weight(weights, d);
        }
        for (DeltaTensor d : originals.values()) {
            NDArray w = weight(weights, d);
            try (NDManager scope = w.getManager().newSubManager()) {
                float[] host = hostFloats(w, scope);
                long[] idx = d.indices();
                float[] val = d.values();
                for (int j = 0; j < idx.length; j++) {
                    host[Math.toIntExact(idx[j])] = val[j];
                }
                EngineArrays.copyInto(w, host);
            }
        }
    }

    /** The weight's elements as float32 on the host; a widened copy lives in {@code scope}, not in W's manager. */
    private static float[] hostFloats(NDArray w, NDManager scope) {
        if (w.getDataType() == DataType.FLOAT32) {
            return w.toFloatArray();
        }
        NDArray wide = w.toType(DataType.FLOAT32, false);
        wide.attach(scope);
        return wide.toFloatArray();
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
                NDArray idx = EngineArrays.of(scope, d.indices());
                NDArray val = EngineArrays.of(scope, values).toType(w.getDataType(), false);
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
