package dev.spiel4j.checkpoint;

import ai.djl.ndarray.NDArray;
import dev.spiel4j.io.HostTensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A trained sparse fine-tuning: the deltas of every targeted matrix, which method produced them with which
 * hyperparameters, and the fingerprint of the base weights they were trained on (their indices mean nothing on any
 * other base). Immutable; within each matrix the indices are unique.
 *
 * @param baseFingerprint {@link dev.spiel4j.io.ModelFingerprint} of the base model
 * @param method          e.g. {@code spiel-ag}, {@code spiel-ma}, {@code compose}
 * @param hyperparameters free-form settings worth recording (learning rate, density, ...)
 * @param deltas          one per targeted module, modules unique
 */
public record SparseFineTuning(String baseFingerprint, String method, Map<String, String> hyperparameters,
                               List<DeltaTensor> deltas) implements FineTuning {

    public SparseFineTuning {
        if (baseFingerprint == null || baseFingerprint.isBlank() || method == null || method.isBlank()) {
            throw new IllegalArgumentException("a sparse fine-tuning needs a base fingerprint and a method name");
        }
        hyperparameters = Collections.unmodifiableMap(new LinkedHashMap<>(hyperparameters));
        deltas = List.copyOf(deltas);
        Set<String> modules = new HashSet<>();
        for (DeltaTensor d : deltas) {
            if (!modules.add(d.module())) {
                throw new IllegalArgumentException("module " + d.module() + " appears twice");
            }
            long duplicate = firstDuplicate(d.indices());
            if (duplicate >= 0) {
                throw new IllegalArgumentException(d.module() + ": index " + duplicate + " appears twice");
            }
        }
    }

    /** The smallest index that occurs more than once, or -1. */
    static long firstDuplicate(long[] indices) {
        long[] sorted = indices.clone();
        Arrays.sort(sorted);
        for (int i = 1; i < sorted.length; i++) {
            if (sorted[i] == sorted[i - 1]) {
                return sorted[i];
            }
        }
        return -1;
    }

    public Optional<DeltaTensor> delta(String module) {
        return deltas.stream().filter(d -> d.module().equals(module)).findFirst();
    }

    /** Total number of trained deltas over all modules. */
    public long numDeltas() {
        return deltas.stream().mapToLong(DeltaTensor::size).sum();
    }

    /**
     * Refuses to go on when this fine-tuning was trained on other base weights.
     *
     * @throws IllegalStateException naming both fingerprints
     */
    @Override
    public void mergeInto(Map<String, NDArray> weights) {
        SparseMerge.merge(this, weights);
    }

    @Override
    public void requireFits(Map<String, HostTensor> base, String fingerprint) {
        SparseMerge.hostDeltas(this, base, fingerprint);
    }

    @Override
    public float[] mergedOnHost(HostTensor weight) {
        String module = weight.name().replaceFirst("\\.weight$", "");
        return SparseMerge.merged(weight, deltas.stream().filter(d -> d.module().equals(module)).findFirst()
                .orElse(null));
    }

    public void requireBase(String fingerprint) {
        if (!baseFingerprint.equals(fingerprint)) {
            throw new IllegalStateException("this sparse fine-tuning was trained on base model " + baseFingerprint
                    + " but the loaded model is " + fingerprint + "; its indices do not apply to other weights");
        }
    }

    /** Saves to one safetensors file, see {@link SparseFineTuningFile}. */
    public void save(Path file) {
        SparseFineTuningFile.save(this, file);
    }

    /** Loads and validates a file written by {@link #save}. */
    public static SparseFineTuning load(Path file) {
        return SparseFineTuningFile.load(file);
    }

    /** Modules, counts, density and value statistics. */
    public SparseFineTuningSummary inspect() {
        return SparseFineTuningSummary.of(this);
    }

    /**
     * The weighted sum {@code sum_i weights[i] * parts[i]}: per module the union of the indices, values at shared
     * indices added (in double, rounded once to float). All parts must share the base and, per module, the shape.
     */
    public static SparseFineTuning compose(List<SparseFineTuning> parts, double[] weights) {
        if (parts.isEmpty() || parts.size() != weights.length) {
            throw new IllegalArgumentException("compose needs one weight per part, got " + parts.size() + " parts and "
                    + weights.length + " weights");
        }
        String base = parts.get(0).baseFingerprint();
        Map<String, int[]> shapes = new LinkedHashMap<>();
        Map<String, Map<Long, Double>> sums = new LinkedHashMap<>();
        for (int p = 0; p < parts.size(); p++) {
            SparseFineTuning part = parts.get(p);
            if (!part.baseFingerprint().equals(base)) {
                throw new IllegalArgumentException("cannot compose fine-tunings of different bases: part 0 is on "
                        + base + ", part " + p + " on " + part.baseFingerprint());
            }
            for (DeltaTensor d : part.deltas()) {
                int[] shape = shapes.computeIfAbsent(d.module(), m -> new int[]{d.rows(), d.cols()});
                if (shape[0] != d.rows() || shape[1] != d.cols()) {
                    throw new IllegalArgumentException("cannot compose " + d.module() + ": shape [" + shape[0] + ", "
                            + shape[1] + "] in an earlier part but [" + d.rows() + ", " + d.cols() + "] in part " + p);
                }
                Map<Long, Double> sum = sums.computeIfAbsent(d.module(), m -> new HashMap<>());
                long[] idx = d.indices();
                float[] val = d.values();
                for (int j = 0; j < idx.length; j++) {
                    sum.merge(idx[j], weights[p] * val[j], Double::sum);
                }
            }
        }
        List<DeltaTensor> out = new ArrayList<>();
        for (var e : sums.entrySet()) {
            long[] idx = e.getValue().keySet().stream().mapToLong(Long::longValue).sorted().toArray();
            float[] val = new float[idx.length];
            for (int j = 0; j < idx.length; j++) {
                val[j] = (float) (double) e.getValue().get(idx[j]);
            }
            int[] shape = shapes.get(e.getKey());
            out.add(new DeltaTensor(e.getKey(), shape[0], shape[1], idx, val));
        }
        Map<String, String> hp = new LinkedHashMap<>();
        hp.put("weights", Arrays.toString(weights));
        hp.put("methods", parts.stream().map(SparseFineTuning::method).toList().toString());
        return new SparseFineTuning(base, "compose", hp, out);
    }
}
