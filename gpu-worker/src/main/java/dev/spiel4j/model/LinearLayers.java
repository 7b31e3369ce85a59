package dev.spiel4j.model;

import ai.djl.ndarray.NDArray;

/**
 * How the decoder evaluates each linear layer of its blocks. The model calls this for q, k, v, o, gate, up and down
 * with the module's Hugging Face path (e.g. {@code model.layers.3.self_attn.q_proj}); a fine-tuning method supplies
 * its own to add a sparse delta, a low-rank update or a scaling without the model knowing about it.
 */
@FunctionalInterface
public interface LinearLayers {

    /** Plain {@code x W^T}. */
    LinearLayers DENSE = (module, x, weight) -> x.matMul(weight.transpose());

    /**
     * @param module the module path, see {@link ModuleNames}
     * @param x      activations {@code [..., in]}
     * @param weight the frozen weight {@code [out, in]}
     * @return {@code [..., out]}
     */
    NDArray apply(String module, NDArray x, NDArray weight);
}
