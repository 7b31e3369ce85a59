package dev.spiel4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the trainer and the fine-tuning methods need from a causal language model. {@code LlamaModel} satisfies it;
 * tests use a tiny stand-in.
 */
public interface CausalLm {

    /**
     * The forward pass cut at its block boundaries, for block-wise backward passes and activation checkpointing.
     *
     * @param scope         what the blocks share (positions, masks) is attached here
     * @param tokens        {@code [B, T]} int64
     * @param attentionMask {@code [B, T]} float 1 for real tokens, 0 for padding, or null
     */
    ForwardSegments segments(NDManager scope, NDArray tokens, NDArray attentionMask);

    /**
     * Training/scoring forward pass: every segment in order.
     *
     * @param scope         every intermediate and the result are attached here
     * @param tokens        {@code [B, T]} int64
     * @param attentionMask {@code [B, T]} float 1 for real tokens, 0 for padding, or null
     * @param linears       how every block linear is evaluated (the fine-tuning method)
     * @return logits {@code [B, T, V]} float32
     */
    default NDArray forward(NDManager scope, NDArray tokens, NDArray attentionMask, LinearLayers linears) {
        return segments(scope, tokens, attentionMask).logits(linears);
    }

    /** The frozen base weights under canonical names (live arrays; full fine-tuning updates them in place). */
    Map<String, NDArray> weights();

    /**
     * The shape of every base parameter by canonical name, including weights not held as dense arrays (e.g. block
     * linears stored as NF4); what budgets and target lists are computed from. By default the shapes of
     * {@link #weights()}.
     */
    default Map<String, Shape> parameterShapes() {
        Map<String, Shape> shapes = new LinkedHashMap<>();
        weights().forEach((name, array) -> shapes.put(name, array.getShape()));
        return shapes;
    }

    /** The manager owning the weights; training steps open sub-managers of it. */
    NDManager manager();
}
