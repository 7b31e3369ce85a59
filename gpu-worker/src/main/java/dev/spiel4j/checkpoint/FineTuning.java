package dev.spiel4j.checkpoint;

import ai.djl.ndarray.NDArray;
import dev.spiel4j.io.HostTensor;

import java.util.Map;

/**
 * A trained fine-tuning that can be added into its base model's weights: sparse deltas ({@link SparseFineTuning}) or
 * a LoRA / (IA)3 adapter ({@link PeftAdapter}).
 */
public interface FineTuning {

    /**
     * Adds the fine-tuning into {@code weights} (the base's engine arrays by canonical name) in place.
     *
     * @throws IllegalArgumentException naming the weight when one is missing or has another shape
     */
    void mergeInto(Map<String, NDArray> weights);

    /**
     * Checks that this fine-tuning belongs to the base with {@code fingerprint} and that the base has every weight it
     * changes, with its shape, before anything is written.
     *
     * @throws IllegalStateException for another base
     * @throws IllegalArgumentException naming a weight that is missing or has another shape
     */
    void requireFits(Map<String, HostTensor> base, String fingerprint);

    /** The base weight {@code weight} (a canonical name) with this fine-tuning added, as float32 values. */
    float[] mergedOnHost(HostTensor weight);
}
