package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunMeasurementTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A complete result line as the child and the peer print it. */
    private static ObjectNode result(boolean activationCheckpointing) {
        ObjectNode n = JSON.createObjectNode().put("status", "ok").put("tool", "python-peft").put("model", "tiny")
                .put("method", "lora").put("activation_checkpointing", activationCheckpointing).put("dtype", "fp32")
                .put("threads", 2).put("trainable_params", 1000).put("base_weight_bytes", 4096)
                .put("optimizer_state_bytes", 8000).put("tokens_per_step", 256.0).put("warmup_steps", 1)
                .put("rss_after_load_bytes", 100L << 20).put("peak_rss_load_bytes", 110L << 20)
                .put("peak_rss_train_bytes", 130L << 20).put("peak_rss_bytes", 130L << 20);
        n.putArray("step_times_s").add(0.5).add(0.25).add(0.75);
        n.putArray("train_losses").add(2.0).add(1.5).add(1.0);
        return n;
    }

    @Test
    void readsTheActivationCheckpointingSetting() {
        assertTrue(RunMeasurement.fromJson(result(true)).activationCheckpointing());
        RunMeasurement plain = RunMeasurement.fromJson(result(false));
        assertEquals(false, plain.activationCheckpointing());
        assertEquals(0.5, plain.stepTimes().median(), 1e-12);
        assertEquals(30L << 20, plain.overheadBytes());
    }

    @Test
    void aResultWithoutTheSettingOrWithAnotherTypeIsRefused() {
        ObjectNode missing = result(true);
        missing.remove("activation_checkpointing");
        String m = assertThrows(IllegalArgumentException.class, () -> RunMeasurement.fromJson(missing)).getMessage();
        assertTrue(m.contains("\"activation_checkpointing\""), m);
        ObjectNode text = result(true).put("activation_checkpointing", "yes");
        m = assertThrows(IllegalArgumentException.class, () -> RunMeasurement.fromJson(text)).getMessage();
        assertTrue(m.contains("not a boolean"), m);
    }

    @Test
    void mismatchNamesWhatDiffersFromTheSpec() {
        BenchSpec spec = new BenchSpec("engine", new BenchSpec.Model("tiny", null, "/hf", null), "lora",
                new BenchSpec.Budget(4, 8, 0, 0), "fp32", 2, 3, 1, 1e-3, 0, 1, "/b.json", true);
        assertNull(RunMeasurement.fromJson(result(true)).mismatch(spec));
        String m = RunMeasurement.fromJson(result(false)).mismatch(spec);
        assertEquals("python-peft measured activation_checkpointing false (asked true)", m);
        String both = RunMeasurement.fromJson(result(true)).mismatch(
                new BenchSpec("engine", new BenchSpec.Model("other", null, "/hf", null), "full", spec.budget(), "fp32",
                        2, 3, 1, 1e-3, 0, 1, "/b.json", true));
        assertTrue(both.contains("model tiny (asked other)") && both.contains("method lora (asked full)"), both);
    }
}
