package dev.spiel4j.model;

import java.util.LinkedHashMap;
import java.util.Map;

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

    /**
     * Every tensor this config needs, by canonical name, with its row-major shape ({@code [out, in]} for linears),
     * in model order. {@code lm_head.weight} is listed only when the embeddings are not tied. Loaders check files
     * against this before allocating.
     */
    public Map<String, long[]> tensorShapes() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put(ModuleNames.EMBED, new long[]{vocabSize, dim});
        for (int l = 0; l < layers; l++) {
            shapes.put(ModuleNames.attnNorm(l), new long[]{dim});
            for (String linear : ModuleNames.BLOCK_LINEARS) {
                shapes.put(ModuleNames.linear(l, linear) + ".weight", linearShape(linear));
            }
            shapes.put(ModuleNames.ffnNorm(l), new long[]{dim});
        }
        shapes.put(ModuleNames.FINAL_NORM, new long[]{dim});
        if (!tiedEmbeddings) {
            shapes.put(ModuleNames.LM_HEAD, new long[]{vocabSize, dim});
        }
        return shapes;
    }

    /** {@code [out, in]} of a block linear given by its short name (see {@link ModuleNames#BLOCK_LINEARS}). */
    public long[] linearShape(String shortName) {
        return switch (shortName) {
            case "self_attn.q_proj", "self_attn.o_proj" -> new long[]{dim, dim};
            case "self_attn.k_proj", "self_attn.v_proj" -> new long[]{kvDim(), dim};
            case "mlp.gate_proj", "mlp.up_proj" -> new long[]{ffnDim, dim};
            case "mlp.down_proj" -> new long[]{dim, ffnDim};
            default -> throw new IllegalArgumentException("not a block linear: " + shortName);
        };
    }
}
