package dev.spiel4j.model;

import ai.djl.ndarray.NDArray;

/**
 * How the decoder evaluates each linear layer of its blocks. The model calls this for q, k, v, o, gate, up and down
 * with the module's Hugging Face path (e.g. {@code model.layers.3.self_attn.q_proj}); a fine-tuning method supplies
 * its own to add a sparse delta, a low-rank update or a scaling without the model knowing about it.
 */
@FunctionalInterface
public interface LinearLayers {

    /** Plain {@code x W^T}, see {@link #dense(NDArray, NDArray)}. */
    LinearLayers DENSE = (module, x, weight) -> dense(x, weight);

    /**
     * {@code x W^T} as one fused op whose result is attached to {@code x}'s manager. {@code x.matMul(w.transpose())}
     * would attach the transpose to the weight's long-lived manager, leaking one array per call.
     */
    static NDArray dense(NDArray x, NDArray weight) {
        return x.getNDArrayInternal().linear(x, weight, null).singletonOrThrow();
    }

    /**
     * @param module the module path, see {@link ModuleNames}
     * @param x      activations {@code [..., in]}
     * @param weight the frozen weight {@code [out, in]}
     * @return {@code [..., out]}
     */
    NDArray apply(String module, NDArray x, NDArray weight);
}
