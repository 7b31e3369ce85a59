package dev.spiel4j.model;

import ai.djl.ndarray.NDArray;

/**
 * One forward pass of a {@link CausalLm} cut at its block boundaries: the token embeddings, then each transformer
 * block, then the final norm and head. Running the segments in order gives exactly the logits of
 * {@link CausalLm#forward}; the trainer runs them one at a time to back-propagate block by block and to recompute a
 * block's forward pass inside its backward segment (activation checkpointing).
 *
 * <p>Each segment attaches its intermediates and its result to its input's manager, so a caller that gives every
 * block its own scope frees that block's activations by closing the scope. What the blocks share (positions,
 * rotary tables, the attention bias) lives in the scope the segments were made in.
 */
public interface ForwardSegments {

    /** The token embeddings {@code [B, T, dim]}, in the segments' scope. */
    NDArray embed();

    /** How many blocks the model has. */
    int blocks();

    /** Block {@code layer} applied to its input {@code x} {@code [B, T, dim]}; the result is attached to x's manager. */
    NDArray block(int layer, NDArray x, LinearLayers linears);

    /** Final norm and head: logits {@code [B, T, vocab]} float32, attached to x's manager. */
    NDArray head(NDArray x);

    /** Every segment in order: the whole forward pass. */
    default NDArray logits(LinearLayers linears) {
        NDArray x = embed();
        for (int layer = 0; layer < blocks(); layer++) {
            x = block(layer, x, linears);
        }
        return head(x);
    }
}
