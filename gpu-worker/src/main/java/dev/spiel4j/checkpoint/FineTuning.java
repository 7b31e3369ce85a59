package dev.spiel4j.checkpoint;

import ai.djl.ndarray.NDArray;

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
}
