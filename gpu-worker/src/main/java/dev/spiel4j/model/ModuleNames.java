package dev.spiel4j.model;

import java.util.ArrayList;
import java.util.List;

/**
 * Canonical tensor and module names: the Hugging Face LLaMA layout, whatever file a model came from. Loaders map
 * their own names onto these; checkpoints and exports use them, so they stay compatible with Python tools.
 */
public final class ModuleNames {
    public static final String EMBED = "model.embed_tokens.weight";
    public static final String FINAL_NORM = "model.norm.weight";
    public static final String LM_HEAD = "lm_head.weight";

    /** The weights the head can use: the final norm, the output projection, and the embedding when it is tied. */
    public static final List<String> HEAD_WEIGHTS = List.of(FINAL_NORM, LM_HEAD, EMBED);

    /** The seven linear layers of a block, in forward order. */
    public static final List<String> BLOCK_LINEARS =
            List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");

    private ModuleNames() {
    }

    public static String block(int layer) {
        return "model.layers." + layer + ".";
    }

    public static String attnNorm(int layer) {
        return block(layer) + "input_layernorm.weight";
    }

    public static String ffnNorm(int layer) {
        return block(layer) + "post_attention_layernorm.weight";
    }

    /** The block a module path belongs to: 3 for {@code model.layers.3.mlp.up_proj}. */
    public static int layerOf(String module) {
        String prefix = "model.layers.";
        int end = module.indexOf('.', prefix.length());
        if (!module.startsWith(prefix) || end < 0) {
            throw new IllegalArgumentException("'" + module + "' is not a module of a block (model.layers.<n>.*)");
        }
        try {
            return Integer.parseInt(module.substring(prefix.length(), end));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + module + "' is not a module of a block (model.layers.<n>.*)");
        }
    }

    /** Module path of a block linear, e.g. {@code model.layers.0.mlp.up_proj}. */
    public static String linear(int layer, String shortName) {
        return block(layer) + shortName;
    }

    /** Every block linear module of a model, layer by layer. */
    public static List<String> allLinears(int layers) {
        List<String> out = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            for (String s : BLOCK_LINEARS) {
                out.add(linear(l, s));
            }
        }
        return out;
    }
}
