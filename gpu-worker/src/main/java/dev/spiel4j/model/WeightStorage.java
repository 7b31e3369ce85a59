package dev.spiel4j.model;

/** How a {@link LlamaModel} holds the frozen weights of its block linears (q, k, v, o, gate, up, down). */
public enum WeightStorage {
    /** In the compute type, like every other weight. */
    DENSE,
    /**
     * As NF4 with double-quantized absmax constants ({@link dev.spiel4j.quant.Nf4Tensor}), dequantized to float32
     * inside each forward pass (qSpIEL's {@code Y = X (DEQUANT(W_nf4) + Delta)}); embedding, norms and head stay dense.
     */
    NF4
}
