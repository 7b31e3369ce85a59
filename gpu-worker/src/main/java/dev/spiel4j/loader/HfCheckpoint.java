package dev.spiel4j.loader;

import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.ModelFingerprint;
import dev.spiel4j.io.HostDType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.model.RopeLayout;
import dev.spiel4j.tokenizer.HfTokenizer;
import dev.spiel4j.tokenizer.SentencePieceBpe;
import dev.spiel4j.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Loads a Hugging Face {@code LlamaForCausalLM} directory: {@code config.json}, the weights as one
 * {@code model.safetensors} or shards listed by {@code model.safetensors.index.json}, and {@code tokenizer.json}
 * (or, when that is absent, a SentencePiece {@code tokenizer.model}).
 * Every expected tensor must be present with the shape the config implies, before anything is handed on. Tensors
 * keep their stored dtype (BF16 stays BF16 on the host; it is widened later, since the engine cannot hold it).
 */
public final class HfCheckpoint {
    public static final String CONFIG = "config.json";
    public static final String WEIGHTS = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";
    private static final String ARCHITECTURE = "LlamaForCausalLM";
    private static final String HF_TOKENIZER = "tokenizer.json";
    private static final String SENTENCEPIECE_MODEL = "tokenizer.model";

    private HfCheckpoint() {
    }

    public static LoadedModel load(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new ModelFormatException(dir, "not a directory (a Hugging Face checkpoint is a directory)");
        }
        LlamaConfig config = parseConfig(dir.resolve(CONFIG));
        Map<String, HostTensor> stored = readWeights(dir);
        Map<String, long[]> expected = expectedShapes(config);
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        for (var e : expected.entrySet()) {
            HostTensor t = stored.get(e.getKey());
            if (t == null) {
                throw new ModelFormatException(dir, "tensor '" + e.getKey() + "' is missing");
            }
            if (!Arrays.equals(t.shape(), e.getValue())) {
                throw new ModelFormatException(dir, "tensor '" + e.getKey() + "' has shape " + Arrays.toString(t.shape())
                        + " but config.json implies " + Arrays.toString(e.getValue()));
            }
            if (t.dtype() != HostDType.F32 && t.dtype() != HostDType.F16 && t.dtype() != HostDType.BF16) {
                throw new ModelFormatException(dir, "tensor '" + e.getKey() + "' has dtype " + t.dtype()
                        + ", expected F32, F16 or BF16");
            }
            tensors.put(e.getKey(), t);
        }
        for (String name : stored.keySet()) {
            // Tied checkpoints may still store lm_head (transformers ignores it); inv_freq buffers are derived.
            boolean ignorable = name.endsWith(".rotary_emb.inv_freq")
                    || (config.tiedEmbeddings() && name.equals(ModuleNames.LM_HEAD));
            if (!expected.containsKey(name) && !ignorable) {
                throw new ModelFormatException(dir, "unexpected tensor '" + name + "' for " + ARCHITECTURE
                        + " (biases or other architectures are not supported)");
            }
        }
        return new LoadedModel(dir, config, tensors, tokenizer(dir), ModelFingerprint.of(tensors));
    }

    /** {@code tokenizer.json}, or without it a SentencePiece {@code tokenizer.model} (e.g. a merged GGUF export). */
    private static Tokenizer tokenizer(Path dir) {
        if (Files.exists(dir.resolve(HF_TOKENIZER))) {
            return HfTokenizer.load(dir);
        }
        Path model = dir.resolve(SENTENCEPIECE_MODEL);
        if (!Files.isRegularFile(model)) {
            throw new ModelFormatException(dir, "tokenizer not found: needs " + HF_TOKENIZER + " or a SentencePiece "
                    + SENTENCEPIECE_MODEL);
        }
        return SentencePieceBpe.fromModelFile(model); // its errors name the file
    }

    /** Parses and checks {@code config.json} of a {@code LlamaForCausalLM}. */
    public static LlamaConfig parseConfig(Path file) {
        ObjectNode c = JsonFiles.readObject(file);
        JsonNode arch = c.path("architectures");
        if (!arch.isArray() || arch.size() != 1 || !ARCHITECTURE.equals(arch.get(0).asText())) {
            throw new ModelFormatException(file, "architectures is " + arch + "; only [\"" + ARCHITECTURE
                    + "\"] is supported");
        }
        if (c.hasNonNull("rope_scaling")) {
            throw new ModelFormatException(file, "rope_scaling " + c.get("rope_scaling") + " is not supported");
        }
        String ropeType = c.path("rope_parameters").path("rope_type").asText("default");
        if (!ropeType.equals("default")) {
            throw new ModelFormatException(file, "rope_parameters.rope_type '" + ropeType + "' is not supported");
        }
        for (String flag : List.of("attention_bias", "mlp_bias")) {
            if (c.path(flag).asBoolean(false)) {
                throw new ModelFormatException(file, flag + " is true; biases are not supported");
            }
        }
        String act = c.path("hidden_act").asText("silu");
        if (!act.equals("silu")) {
            throw new ModelFormatException(file, "hidden_act '" + act + "' is not supported (only silu)");
        }
        int dim = requiredInt(file, c, "hidden_size");
        int heads = requiredInt(file, c, "num_attention_heads");
        if (c.hasNonNull("head_dim") && heads > 0 && c.get("head_dim").asInt() * heads != dim) {
            throw new ModelFormatException(file, "head_dim " + c.get("head_dim") + " is not hidden_size / "
                    + "num_attention_heads = " + dim / heads + " (decoupled head sizes are not supported)");
        }
        double theta = c.hasNonNull("rope_theta") ? c.get("rope_theta").asDouble()
                : c.path("rope_parameters").path("rope_theta").asDouble(10000.0);
        try {
            return new LlamaConfig(dim, requiredInt(file, c, "num_hidden_layers"), heads,
                    c.hasNonNull("num_key_value_heads") ? requiredInt(file, c, "num_key_value_heads") : heads,
                    requiredInt(file, c, "intermediate_size"), requiredInt(file, c, "vocab_size"),
                    c.hasNonNull("max_position_embeddings") ? requiredInt(file, c, "max_position_embeddings") : 2048,
                    (float) c.path("rms_norm_eps").asDouble(1e-6), (float) theta, RopeLayout.ROTATE_HALF,
                    c.path("tie_word_embeddings").asBoolean(false));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, e.getMessage(), e);
        }
    }

    private static int requiredInt(Path file, JsonNode c, String field) {
        JsonNode v = c.get(field);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new ModelFormatException(file, "field '" + field + "' is " + (v == null ? "missing" : v)
                    + "; expected an integer");
        }
        return v.asInt();
    }

    /** Canonical tensor name to shape, in a stable order. */
    public static Map<String, long[]> expectedShapes(LlamaConfig c) {
        Map<String, long[]> s = new LinkedHashMap<>();
        long d = c.dim();
        long q = (long) c.heads() * c.headDim();
        long kv = c.kvDim();
        s.put(ModuleNames.EMBED, new long[]{c.vocabSize(), d});
        for (int l = 0; l < c.layers(); l++) {
            s.put(ModuleNames.attnNorm(l), new long[]{d});
            s.put(ModuleNames.ffnNorm(l), new long[]{d});
            Map<String, long[]> linears = Map.of(
                    "self_attn.q_proj", new long[]{q, d}, "self_attn.k_proj", new long[]{kv, d},
                    "self_attn.v_proj", new long[]{kv, d}, "self_attn.o_proj", new long[]{d, q},
                    "mlp.gate_proj", new long[]{c.ffnDim(), d}, "mlp.up_proj", new long[]{c.ffnDim(), d},
                    "mlp.down_proj", new long[]{d, c.ffnDim()});
            for (String lin : ModuleNames.BLOCK_LINEARS) {
                s.put(ModuleNames.linear(l, lin) + ".weight", linears.get(lin));
            }
        }
        s.put(ModuleNames.FINAL_NORM, new long[]{d});
        if (!c.tiedEmbeddings()) {
            s.put(ModuleNames.LM_HEAD, new long[]{c.vocabSize(), d});
        }
        return s;
    }

    private static Map<String, HostTensor> readWeights(Path dir) {
        Path index = dir.resolve(INDEX);
        Path single = dir.resolve(WEIGHTS);
        if (Files.exists(index)) {
            return readShards(dir, index);
        }
        if (Files.exists(single)) {
            return SafeTensors.read(single).tensors();
        }
        throw new ModelFormatException(dir, "holds neither " + WEIGHTS + " nor " + INDEX);
    }

    /** Reads every shard the index names; each weight must be in the shard the index says. */
    private static Map<String, HostTensor> readShards(Path dir, Path index) {
        JsonNode weightMap = JsonFiles.readObject(index).path("weight_map");
        if (!weightMap.isObject() || weightMap.isEmpty()) {
            throw new ModelFormatException(index, "field 'weight_map' is missing or empty");
        }
        Map<String, String> shardOf = new TreeMap<>();
        weightMap.fields().forEachRemaining(e -> {
            if (!e.getValue().isTextual()) {
                throw new ModelFormatException(index, "weight_map entry '" + e.getKey() + "' is not a file name");
            }
            shardOf.put(e.getKey(), e.getValue().asText());
        });
        Path root = dir.toAbsolutePath().normalize();
        Map<String, SafeTensors.Contents> shards = new TreeMap<>();
        for (String shard : shardOf.values()) {
            Path p = root.resolve(shard).normalize();
            if (!p.getParent().equals(root)) {
                throw new ModelFormatException(index, "shard '" + shard + "' is not a file in the checkpoint directory");
            }
            if (!Files.isRegularFile(p)) {
                throw new ModelFormatException(index, "shard '" + shard + "' does not exist");
            }
            shards.computeIfAbsent(shard, s -> SafeTensors.read(p));
        }
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (var e : shardOf.entrySet()) {
            SafeTensors.Contents shard = shards.get(e.getValue());
            HostTensor t = shard.tensors().get(e.getKey());
            if (t == null) {
                throw new ModelFormatException(shard.file(), "tensor '" + e.getKey() + "' listed in " + INDEX
                        + " is not in this shard");
            }
            out.put(e.getKey(), t);
        }
        for (SafeTensors.Contents shard : shards.values()) {
            for (String name : shard.tensors().keySet()) {
                if (!out.containsKey(name)) {
                    throw new ModelFormatException(shard.file(), "tensor '" + name + "' is not listed in " + INDEX);
                }
            }
        }
        return out;
    }
}
