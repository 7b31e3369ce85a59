package dev.spiel4j.train;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.checkpoint.PeftAdapter;
import dev.spiel4j.checkpoint.SftExport;
import dev.spiel4j.data.Batch;
import dev.spiel4j.data.ShufflePosition;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.ia3.Ia3Config;
import dev.spiel4j.peft.lora.LoraConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA and (IA)3 runs leave an adapter in PEFT's layout: written from a trained session on the GGUF base (whose q
 * and k rows are interleaved, so the adapter's rows are mapped to Hugging Face's on the way out and back on the way
 * in), read back and merged into a fresh copy of the base, it gives the logits the method itself gives.
 */
class PeftAdapterTest {
    @TempDir
    Path dir;

    @Test
    void aLoraRunsAdapterMergedIntoTheBaseGivesTheMethodsLogits() {
        JsonNode config = roundTrip(LoraConfig.of(4, 8f, 0f).withSeed(3), "lora");
        assertEquals("LORA", config.path("peft_type").asText());
        assertEquals(4, config.path("r").asInt());
        assertEquals(8.0, config.path("lora_alpha").asDouble());
        SafeTensors.Contents c = SafeTensors.read(dir.resolve("lora").resolve(SftExport.ADAPTER_WEIGHTS));
        String q = "base_model.model." + ModuleNames.linear(0, "self_attn.q_proj");
        assertArrayEquals(new long[]{4, 64}, c.require(q + ".lora_A.weight").shape());
        assertArrayEquals(new long[]{64, 4}, c.require(q + ".lora_B.weight").shape());
    }

    @Test
    void anIa3RunsAdapterMergedIntoTheBaseGivesTheMethodsLogits() {
        JsonNode config = roundTrip(Ia3Config.defaults(), "ia3");
        assertEquals("IA3", config.path("peft_type").asText());
        assertEquals("down_proj", config.path("feedforward_modules").get(0).asText());
        SafeTensors.Contents c = SafeTensors.read(dir.resolve("ia3").resolve(SftExport.ADAPTER_WEIGHTS));
        String layer = "base_model.model." + ModuleNames.linear(2, "");
        assertArrayEquals(new long[]{32, 1}, c.require(layer + "self_attn.k_proj.ia3_l").shape());
        assertArrayEquals(new long[]{1, 172}, c.require(layer + "mlp.down_proj.ia3_l").shape());
    }

    @Test
    void anAdapterOfAnotherBaseIsRefused() {
        roundTrip(LoraConfig.of(2, 4f, 0f), "lora");
        var otherBase = dev.spiel4j.loader.HfCheckpoint.load(dev.spiel4j.io.SharedAssets.file("model/stories260K-hf"));
        String message = assertThrows(IllegalStateException.class,
                () -> PeftAdapter.read(dir.resolve("lora"), otherBase)).getMessage();
        assertTrue(message.contains(otherBase.fingerprint()), message);
    }

    /** Trains {@code method} 3 steps, writes its adapter to dir/name, reads it back; returns the adapter config. */
    private JsonNode roundTrip(MethodConfig method, String name) {
        TrainingData data = TrainingSessionTest.data(8);
        Batch probe = data.evalBatches(4).get(0);
        try (TrainingSession session = TrainingSession.open(TrainingSessionTest.LOADED, TrainingSessionTest.CPU,
                new SessionSpec(method, 3, 1f))) {
            TrainingSessionTest.Feed feed = new TrainingSessionTest.Feed(data, 7, 4, 4, ShufflePosition.START);
            for (int t = 1; t <= 3; t++) {
                session.step(feed.next(), 1e-2f);
            }
            float[] trained = TrainingSessionTest.logits(session.model(), probe, session.method());
            float[] base = TrainingSessionTest.logits(session.model(), probe, LinearLayers.DENSE);
            assertTrue(TrainingSessionTest.maxAbsDiff(trained, base) > 1e-3, "the run must have changed the logits");

            PeftAdapter adapter = session.peftAdapter(TrainingSessionTest.LOADED.fingerprint()).orElseThrow();
            adapter.write(TrainingSessionTest.LOADED.config(), "stories260K", dir.resolve(name));
            PeftAdapter back = PeftAdapter.read(dir.resolve(name), TrainingSessionTest.LOADED);
            assertEquals(adapter.kind(), back.kind());
            for (Map.Entry<String, HostTensor> e : adapter.tensors().entrySet()) {
                assertArrayEquals(e.getValue().toFloats(), back.tensors().get(e.getKey()).toFloats(), 0f, e.getKey());
            }
            try (NDManager root = NDManager.newBaseManager();
                 LlamaModel fresh = LlamaModel.create(TrainingSessionTest.LOADED, root, DataType.FLOAT32)) {
                back.mergeInto(fresh.weights());
                double diff = TrainingSessionTest.maxAbsDiff(trained,
                        TrainingSessionTest.logits(fresh, probe, LinearLayers.DENSE));
                assertTrue(diff < 1e-4, name + ": merged adapter against the method's own logits: " + diff);
            }
        }
        return JsonFiles.readObject(dir.resolve(name).resolve(SftExport.ADAPTER_CONFIG));
    }
}
