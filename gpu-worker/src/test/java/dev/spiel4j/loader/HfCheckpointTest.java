package dev.spiel4j.loader;

import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.ModelFingerprint;
import dev.spiel4j.io.HostDType;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.RopeLayout;
import dev.spiel4j.tokenizer.SentencePieceBpe;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfCheckpointTest {
    static final Path HF = SharedAssets.file("model/stories260K-hf");
    static LoadedModel reference;

    @TempDir
    Path tmp;

    @BeforeAll
    static void loadReference() {
        reference = HfCheckpoint.load(HF);
    }

    @Test
    void loadsStories260KWithItsConfigAndTokenizer() {
        assertEquals(new LlamaConfig(64, 5, 8, 4, 172, 512, 512, 1e-5f, 10000f, RopeLayout.ROTATE_HALF, true),
                reference.config());
        assertEquals(47, reference.tensors().size());
        assertArrayEquals(new long[]{32, 64}, reference.tensors().get("model.layers.4.self_attn.k_proj.weight").shape());
        assertArrayEquals(new int[]{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426},
                reference.tokenizer().encode("Once upon a time, there was a little girl named Lily."));
        assertEquals(ModelFingerprint.of(reference.tensors()), reference.fingerprint());
        assertEquals(HF, reference.source());
    }

    /** Copies the side files and writes the given tensors as {@code shards} shards (1 = no index). */
    Path checkpoint(Map<String, HostTensor> tensors, int shards, Consumer<ObjectNode> editConfig) throws IOException {
        Path dir = Files.createTempDirectory(tmp, "ckpt");
        for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
            Files.copy(HF.resolve(f), dir.resolve(f));
        }
        ObjectNode config = JsonFiles.readObject(HF.resolve("config.json"));
        editConfig.accept(config);
        Files.writeString(dir.resolve("config.json"), config.toPrettyString());
        if (shards == 1) {
            SafeTensors.write(dir.resolve(HfCheckpoint.WEIGHTS), tensors.values(), Map.of("format", "pt"));
            return dir;
        }
        List<List<HostTensor>> parts = new ArrayList<>();
        for (int s = 0; s < shards; s++) {
            parts.add(new ArrayList<>());
        }
        ObjectNode index = JsonFiles.MAPPER.createObjectNode();
        ObjectNode weightMap = index.putObject("weight_map");
        int i = 0;
        for (HostTensor t : tensors.values()) {
            int s = i++ % shards;
            parts.get(s).add(t);
            weightMap.put(t.name(), shardName(s, shards));
        }
        for (int s = 0; s < shards; s++) {
            SafeTensors.write(dir.resolve(shardName(s, shards)), parts.get(s), Map.of("format", "pt"));
        }
        Files.writeString(dir.resolve(HfCheckpoint.INDEX), index.toPrettyString());
        return dir;
    }

    static String shardName(int s, int of) {
        return String.format("model-%05d-of-%05d.safetensors", s + 1, of);
    }

    String error(Path dir) {
        return assertThrows(ModelFormatException.class, () -> HfCheckpoint.load(dir)).getMessage();
    }

    @Test
    void aShardedCopyLoadsIdentically() throws IOException {
        LoadedModel sharded = HfCheckpoint.load(checkpoint(reference.tensors(), 3, c -> { }));
        assertEquals(reference.config(), sharded.config());
        assertEquals(reference.fingerprint(), sharded.fingerprint());
        for (var e : reference.tensors().entrySet()) {
            assertEquals(e.getValue().data(), sharded.tensors().get(e.getKey()).data(), e.getKey());
        }
    }

    @Test
    void keepsBfloat16OnTheHost() throws IOException {
        Map<String, HostTensor> bf16 = new LinkedHashMap<>();
        for (HostTensor t : reference.tensors().values()) {
            float[] f = t.toFloats();
            ByteBuffer b = ByteBuffer.allocate(2 * f.length).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : f) {
                b.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
            }
            bf16.put(t.name(), new HostTensor(t.name(), t.shape(), HostDType.BF16, b.flip()));
        }
        LoadedModel m = HfCheckpoint.load(checkpoint(bf16, 1, c -> c.put("torch_dtype", "bfloat16")));
        HostTensor embed = m.tensors().get("model.embed_tokens.weight");
        assertEquals(HostDType.BF16, embed.dtype());
        float[] original = reference.tensors().get("model.embed_tokens.weight").toFloats();
        float[] widened = embed.toFloats();
        for (int i = 0; i < original.length; i++) {
            assertEquals(Float.intBitsToFloat(Float.floatToRawIntBits(original[i]) & 0xFFFF0000), widened[i], 0f);
        }
    }

    @Test
    void refusesAMissingTensor() throws IOException {
        Map<String, HostTensor> fewer = new LinkedHashMap<>(reference.tensors());
        fewer.remove("model.layers.2.mlp.up_proj.weight");
        String m = error(checkpoint(fewer, 2, c -> { }));
        assertTrue(m.contains("tensor 'model.layers.2.mlp.up_proj.weight' is missing"), m);
        m = error(checkpoint(reference.tensors(), 1, c -> c.put("tie_word_embeddings", false)));
        assertTrue(m.contains("tensor 'lm_head.weight' is missing"), m);
    }

    @Test
    void refusesAShapeThatDoesNotFitTheConfig() throws IOException {
        String m = error(checkpoint(reference.tensors(), 1, c -> c.put("intermediate_size", 100)));
        assertTrue(m.contains("'model.layers.0.mlp.gate_proj.weight' has shape [172, 64]")
                && m.contains("implies [100, 64]"), m);
    }

    @Test
    void refusesOtherArchitecturesAndRopeScaling() throws IOException {
        String m = error(checkpoint(reference.tensors(), 1,
                c -> c.putArray("architectures").add("MistralForCausalLM")));
        assertTrue(m.contains("config.json") && m.contains("MistralForCausalLM"), m);
        m = error(checkpoint(reference.tensors(), 1, c -> c.putObject("rope_scaling").put("type", "linear")));
        assertTrue(m.contains("rope_scaling"), m);
        m = error(checkpoint(reference.tensors(), 1, c -> c.remove("hidden_size")));
        assertTrue(m.contains("'hidden_size' is missing"), m);
    }

    @Test
    void refusesBrokenShardIndexesAndFiles() throws IOException {
        Path dir = checkpoint(reference.tensors(), 2, c -> { });
        Files.delete(dir.resolve(shardName(1, 2)));
        assertTrue(error(dir).contains("shard '" + shardName(1, 2) + "' does not exist"));

        dir = checkpoint(reference.tensors(), 2, c -> { });
        ObjectNode index = JsonFiles.readObject(dir.resolve(HfCheckpoint.INDEX));
        ((ObjectNode) index.get("weight_map")).put("model.norm.weight", "../outside.safetensors");
        Files.writeString(dir.resolve(HfCheckpoint.INDEX), index.toString());
        assertTrue(error(dir).contains("not a file in the checkpoint directory"));

        dir = checkpoint(reference.tensors(), 1, c -> { });
        Path weights = dir.resolve(HfCheckpoint.WEIGHTS);
        byte[] full = Files.readAllBytes(weights);
        Files.write(weights, java.util.Arrays.copyOf(full, full.length / 2));
        String m = error(dir);
        assertTrue(m.startsWith(weights.toString()) && m.contains("data region"), m);
    }

    @Test
    void refusesShardsThatDisagreeWithTheIndexAndAMissingTokenizer() throws IOException {
        Path dir = checkpoint(reference.tensors(), 2, c -> { });
        ObjectNode index = JsonFiles.readObject(dir.resolve(HfCheckpoint.INDEX));
        String wrongShard = SafeTensors.read(dir.resolve(shardName(0, 2))).tensors().containsKey("model.norm.weight")
                ? shardName(1, 2) : shardName(0, 2);
        ((ObjectNode) index.get("weight_map")).put("model.norm.weight", wrongShard);
        Files.writeString(dir.resolve(HfCheckpoint.INDEX), index.toString());
        String m = error(dir);
        assertTrue(m.contains("'model.norm.weight' listed in " + HfCheckpoint.INDEX + " is not in this shard"), m);

        dir = checkpoint(reference.tensors(), 1, c -> { });
        Files.delete(dir.resolve("tokenizer.json"));
        m = error(dir);
        assertTrue(m.contains("tokenizer.json") && m.contains("not found"), m);
    }

    @Test
    void fallsBackToASentencePieceModelWithoutTokenizerJson() throws IOException {
        Path dir = checkpoint(reference.tensors(), 1, c -> { });
        Files.delete(dir.resolve("tokenizer.json"));
        Files.copy(SharedAssets.file("model/tok512.model"), dir.resolve("tokenizer.model"));
        LoadedModel m = HfCheckpoint.load(dir);
        assertInstanceOf(SentencePieceBpe.class, m.tokenizer());
        assertArrayEquals(reference.tokenizer().encode("Once upon a time, there was a little girl named Lily."),
                m.tokenizer().encode("Once upon a time, there was a little girl named Lily."));

        Files.write(dir.resolve("tokenizer.model"), new byte[]{10, 100});
        String e = error(dir);
        assertTrue(e.contains("tokenizer.model") && e.contains("piece #0 claims 100 bytes"), e);
    }
}
