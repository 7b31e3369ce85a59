package dev.spiel4j.loader;

import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.ModelFingerprint;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.model.RopeLayout;
import dev.spiel4j.tokenizer.SentencePieceBpe;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Loads a LLaMA-architecture GGUF file (v2/v3) with F32, F16 or BF16 tensors and the SentencePiece tokenizer in its
 * metadata. Tensors are renamed to the canonical Hugging Face names and reshaped to row-major {@code [out, in]};
 * their bytes stay memory-mapped (BF16 is converted only when a model is created from them). The whole file is
 * validated against its own config before anything is mapped: unknown, missing, duplicated or misshapen tensors,
 * quantized types (refused by name) and a header that lies about sizes all raise {@link ModelFormatException}.
 * GGUF q/k weights use the interleaved rotary layout.
 */
public final class GgufReader {
    private static final Pattern BLOCK_TENSOR = Pattern.compile("blk\\.(\\d+)\\.([a-z_]+)\\.weight");
    private static final Map<String, String> BLOCK_NAMES = Map.of(
            "attn_q", "self_attn.q_proj.weight", "attn_k", "self_attn.k_proj.weight",
            "attn_v", "self_attn.v_proj.weight", "attn_output", "self_attn.o_proj.weight",
            "ffn_gate", "mlp.gate_proj.weight", "ffn_up", "mlp.up_proj.weight", "ffn_down", "mlp.down_proj.weight",
            "attn_norm", "input_layernorm.weight", "ffn_norm", "post_attention_layernorm.weight");

    private GgufReader() {
    }

    public static LoadedModel load(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException(file, "no such file");
        }
        GgufFile gguf = GgufFile.read(file);
        Map<String, Object> meta = gguf.metadata();
        String arch = string(file, meta, "general.architecture");
        if (!arch.equals("llama")) {
            throw new ModelFormatException(file, "architecture '" + arch + "' is not supported (only 'llama')");
        }
        boolean hasOutput = gguf.tensors().stream().anyMatch(t -> t.name().equals("output.weight"));
        LlamaConfig config = config(file, meta, !hasOutput);
        Map<String, long[]> expected = config.tensorShapes();

        Map<String, GgufFile.TensorInfo> byCanonical = new LinkedHashMap<>();
        for (GgufFile.TensorInfo t : gguf.tensors()) {
            String canonical = canonicalName(t.name(), config.layers());
            if (canonical == null || !expected.containsKey(canonical)) {
                throw new ModelFormatException(file, "unexpected tensor '" + t.name() + "' for a " + config.layers()
                        + "-layer llama model");
            }
            if (byCanonical.put(canonical, t) != null) {
                throw new ModelFormatException(file, "tensor '" + t.name() + "' appears twice");
            }
            if (t.hostType() == null) {
                throw new ModelFormatException(file, "tensor '" + t.name() + "' has type " + t.typeName()
                        + "; only F32, F16 and BF16 are supported (dequantize the model first)");
            }
            if (!Arrays.equals(t.shape(), expected.get(canonical))) {
                throw new ModelFormatException(file, "tensor '" + t.name() + "' has shape "
                        + Arrays.toString(t.shape()) + " (GGUF dims " + Arrays.toString(t.dims()) + ") but the config"
                        + " needs " + Arrays.toString(expected.get(canonical)) + " for " + canonical);
            }
        }
        for (String name : expected.keySet()) {
            if (!byCanonical.containsKey(name)) {
                throw new ModelFormatException(file, "missing tensor for " + name);
            }
        }
        SentencePieceBpe tokenizer;
        try {
            tokenizer = SentencePieceBpe.fromGgufMetadata(meta);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, e.getMessage(), e);
        }
        if (tokenizer.vocabSize() != config.vocabSize()) {
            throw new ModelFormatException(file, "tokenizer has " + tokenizer.vocabSize() + " tokens but the "
                    + "embedding has " + config.vocabSize() + " rows");
        }
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        byCanonical.forEach((name, t) ->
                tensors.put(name, new HostTensor(name, t.shape(), t.hostType(), gguf.map(file, t, t.hostType()))));
        return new LoadedModel(file, config, tensors, tokenizer, ModelFingerprint.of(tensors));
    }

    /** The canonical Hugging Face name of a GGUF tensor, or null if it is not part of a llama model. */
    static String canonicalName(String ggufName, int layers) {
        switch (ggufName) {
            case "token_embd.weight":
                return ModuleNames.EMBED;
            case "output_norm.weight":
                return ModuleNames.FINAL_NORM;
            case "output.weight":
                return ModuleNames.LM_HEAD;
            default:
                Matcher m = BLOCK_TENSOR.matcher(ggufName);
                if (!m.matches() || !BLOCK_NAMES.containsKey(m.group(2))) {
                    return null;
                }
                int layer;
                try {
                    layer = Integer.parseInt(m.group(1));
                } catch (NumberFormatException e) {
                    return null;
                }
                return layer < layers ? ModuleNames.block(layer) + BLOCK_NAMES.get(m.group(2)) : null;
        }
    }

    private static LlamaConfig config(Path file, Map<String, Object> meta, boolean tied) {
        int dim = intKey(file, meta, "llama.embedding_length");
        int heads = intKey(file, meta, "llama.attention.head_count");
        int kvHeads = meta.containsKey("llama.attention.head_count_kv")
                ? intKey(file, meta, "llama.attention.head_count_kv") : heads;
        Object tokens = meta.get("tokenizer.ggml.tokens");
        if (!(tokens instanceof List<?> list)) {
            throw new ModelFormatException(file, "metadata 'tokenizer.ggml.tokens' is missing or not an array");
        }
        int vocab = meta.containsKey("llama.vocab_size") ? intKey(file, meta, "llama.vocab_size") : list.size();
        float theta = meta.containsKey("llama.rope.freq_base") ? floatKey(file, meta, "llama.rope.freq_base") : 10000f;
        LlamaConfig config;
        try {
            config = new LlamaConfig(dim, intKey(file, meta, "llama.block_count"), heads, kvHeads,
                    intKey(file, meta, "llama.feed_forward_length"), vocab, intKey(file, meta, "llama.context_length"),
                    floatKey(file, meta, "llama.attention.layer_norm_rms_epsilon"), theta, RopeLayout.INTERLEAVED,
                    tied);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, e.getMessage(), e);
        }
        if (meta.containsKey("llama.rope.dimension_count")
                && intKey(file, meta, "llama.rope.dimension_count") != config.headDim()) {
            throw new ModelFormatException(file, "llama.rope.dimension_count " + meta.get("llama.rope.dimension_count")
                    + " differs from head_dim " + config.headDim() + ": partial rotary embeddings are not supported");
        }
        for (String unsupported : List.of("llama.rope.scaling.type", "llama.rope.scaling.factor")) {
            if (meta.containsKey(unsupported)) {
                throw new ModelFormatException(file, "metadata '" + unsupported + "' (rope scaling) is not supported");
            }
        }
        return config;
    }

    private static String string(Path file, Map<String, Object> meta, String key) {
        if (!(meta.get(key) instanceof String s)) {
            throw new ModelFormatException(file, "metadata '" + key + "' is missing or not a string");
        }
        return s;
    }

    private static int intKey(Path file, Map<String, Object> meta, String key) {
        if (!(meta.get(key) instanceof Long v)) {
            throw new ModelFormatException(file, "metadata '" + key + "' is missing or not an integer");
        }
        if (v <= 0 || v > Integer.MAX_VALUE) {
            throw new ModelFormatException(file, "metadata '" + key + "' = " + v + " is out of range");
        }
        return v.intValue();
    }

    private static float floatKey(Path file, Map<String, Object> meta, String key) {
        Object v = meta.get(key);
        if (v instanceof Float f) {
            return f;
        }
        if (v instanceof Double d) {
            return d.floatValue();
        }
        throw new ModelFormatException(file, "metadata '" + key + "' is missing or not a float");
    }
}
