package dev.spiel4j.model;

/**
 * Shape of a LLaMA-family decoder. Validated on construction so that a loader can check a file against it
 * before allocating.
 *
 * @param dim           hidden size
 * @param layers        number of transformer blocks
 * @param heads         query heads
 * @param kvHeads       key/value heads (grouped-query attention when fewer than {@code heads})
 * @param ffnDim        SwiGLU intermediate size
 * @param vocabSize     vocabulary size
 * @param contextLength maximum positions
 * @param normEps       RMSNorm epsilon
 * @param ropeTheta     rotary base
 * @param ropeLayout    which rotary pairing the q/k weights expect
 * @param tiedEmbeddings whether the output head reuses the token embedding
 */
public record LlamaConfig(int dim, int layers, int heads, int kvHeads, int ffnDim, int vocabSize, int contextLength,
                          float normEps, float ropeTheta, RopeLayout ropeLayout, boolean tiedEmbeddings) {

    public LlamaConfig {
        require(dim > 0 && layers > 0 && heads > 0 && kvHeads > 0 && ffnDim > 0 && vocabSize > 0 && contextLength > 0,
                "all sizes must be positive");
        require(dim % heads == 0, "dim " + dim + " is not divisible by heads " + heads);
        require(heads % kvHeads == 0, "heads " + heads + " is not a multiple of kv_heads " + kvHeads);
        require((dim / heads) % 2 == 0, "head_dim " + dim / heads + " must be even for rotary embeddings");
        require(normEps > 0 && ropeTheta > 0, "norm_eps and rope_theta must be positive");
        require(ropeLayout != null, "rope layout is required");
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("invalid LLaMA config: " + message);
        }
    }

    public int headDim() {
        return dim / heads;
    }

    public int kvDim() {
        return kvHeads * headDim();
    }
}
