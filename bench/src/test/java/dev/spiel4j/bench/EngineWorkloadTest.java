package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.data.Batch;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.train.BackwardPass;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The engine workload driven by {@link BenchChild#run} in this JVM, on stories260K with dolly batches. */
class EngineWorkloadTest {
    static final Path GGUF = SharedAssets.file("model/stories260K.gguf");

    @TempDir
    static Path tmp;
    static Path batches;

    @BeforeAll
    static void writeBatches() {
        BatchFile file = BatchFile.instructions(SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl"),
                GgufReader.load(GGUF).tokenizer(), 128, 4, 6, 2, 42);
        assertEquals(6, file.train().size());
        assertEquals(2, file.eval().size());
        for (Batch b : file.train()) {
            assertEquals(4, b.size());
            assertTrue(b.seqLen() <= 128 && b.lossTokens() > 0);
        }
        batches = tmp.resolve("dolly.json");
        file.write(batches);
    }

    static BenchSpec spec(BenchSpec.Model model, String method, long deltas, String dtype, String batchFile) {
        return new BenchSpec("engine", model, method, new BenchSpec.Budget(4, 8, 0, deltas), dtype, 1, 6, 1, 1e-2, 0,
                42, batchFile, false);
    }

    static BenchSpec.Model stories() {
        return new BenchSpec.Model("stories260K", GGUF.toString(), null, null);
    }

    @Test
    void loraAndSpielAgTrainStories260KAtTheSameBudget() throws Exception {
        long budget = BenchSuites.STORIES260K.loraParameters(4);
        assertEquals(23120, budget, "4 * 5 blocks * (q 128 + k 96 + v 96 + o 128 + gate/up/down 3 * 236)");
        for (String method : new String[]{"lora", "spiel-ag", "spiel-ma"}) {
            ObjectNode r = BenchChild.run(spec(stories(), method, budget, "fp32", batches.toString()));
            System.out.println(method + ": " + r);
            assertEquals("ok", r.get("status").asText());
            long params = r.get("trainable_params").asLong();
            // sparse methods floor each matrix's share of the budget
            assertTrue(params <= budget && params > budget - 35, method + " trains " + params);
            assertEquals(6, r.get("step_times_s").size());
            assertTrue(r.get("eval_loss").asDouble() < r.get("eval_loss_initial").asDouble(), method + ": " + r);
            assertEquals(1, r.get("threads").asInt());
            long state = r.get("optimizer_state_bytes").asLong();
            if (method.equals("spiel-ma")) {
                // SM3 keeps one float per row and per column of each matrix and the grouping of the slots by row
                // and by column (an int32 cell each per slot, an int64 per occupied row and column): at least 8 bytes
                // per slot, less than AdamW's 12 (two float32 moments and an int32 age)
                assertTrue(state >= 8 * params && state < 12 * params, "SM3 state: " + r);
            } else {
                assertTrue(state >= 8 * params, "AdamW moments: " + r);
            }
            // float32 weights: the 260,032 parameters plus the GGUF's second copy of the tied output head
            assertEquals(4 * (BenchSuites.STORIES260K.parameters() + 512 * 64), r.get("base_weight_bytes").asLong());
        }
    }

    /**
     * With activation checkpointing the session runs the checkpointed backward pass, which computes the same
     * gradients bit for bit (the engine's promise): the same losses, step for step, as the block-wise run.
     */
    @Test
    void activationCheckpointingRecomputesAndTrainsTheSameSteps() throws Exception {
        long budget = BenchSuites.STORIES260K.loraParameters(4);
        for (String method : new String[]{"lora", "spiel-ag"}) {
            BenchSpec plain = spec(stories(), method, budget, "fp32", batches.toString());
            BenchSpec checkpointed = plain.withActivationCheckpointing(true);
            assertEquals(BackwardPass.BLOCK_WISE, EngineWorkload.sessionSpec(plain).backward());
            assertEquals(BackwardPass.CHECKPOINTED, EngineWorkload.sessionSpec(checkpointed).backward());
            assertEquals(plain.warmupSteps() + plain.steps(), EngineWorkload.sessionSpec(checkpointed).totalSteps());

            ObjectNode a = BenchChild.run(plain);
            ObjectNode b = BenchChild.run(checkpointed);
            assertFalse(a.get("activation_checkpointing").asBoolean());
            assertTrue(b.get("activation_checkpointing").asBoolean());
            assertEquals(a.get("train_losses"), b.get("train_losses"), method);
            assertEquals(a.get("eval_loss"), b.get("eval_loss"), method);
            assertEquals(a.get("trainable_params"), b.get("trainable_params"), method);
        }
    }

    @Test
    void aRandomShapeTrainsAtTheBudgetItsSpecComputes() throws Exception {
        BenchSpec.RandomShape shape = new BenchSpec.RandomShape(32, 2, 4, 2, 64, 100, 64, 1e-5, 1e4, false, 3);
        Path synthetic = tmp.resolve("synthetic.json");
        BatchFile.synthetic(1, 3, 1, 2, 16, 100).write(synthetic);
        BenchSpec.Model model = new BenchSpec.Model("tiny", null, null, shape);
        ObjectNode lora = BenchChild.run(spec(model, "lora", 0, "fp32", synthetic.toString()));
        assertEquals(shape.loraParameters(4), lora.get("trainable_params").asLong());
        assertEquals(4 * shape.parameters(), lora.get("base_weight_bytes").asLong());
        ObjectNode ag = BenchChild.run(spec(model, "spiel-ag", 500, "fp32", synthetic.toString()));
        assertTrue(ag.get("trainable_params").asLong() <= 500 && ag.get("trainable_params").asLong() > 500 - 14);
    }

    @Test
    void anNf4BaseTrainsQLoraAndQSpielAgAndHoldsTheBlockLinearsInFewerBytes() throws Exception {
        BenchSpec.RandomShape shape = new BenchSpec.RandomShape(64, 2, 4, 2, 128, 100, 64, 1e-5, 1e4, false, 3);
        Path synthetic = tmp.resolve("synthetic-nf4.json");
        BatchFile.synthetic(1, 3, 1, 2, 16, 100).write(synthetic);
        BenchSpec.Model model = new BenchSpec.Model("tiny", null, null, shape);
        ObjectNode dense = BenchChild.run(spec(model, "lora", 0, "fp32", synthetic.toString()));
        ObjectNode qlora = BenchChild.run(spec(model, "lora", 0, "nf4", synthetic.toString()));
        ObjectNode qspiel = BenchChild.run(spec(model, "spiel-ag", 500, "nf4", synthetic.toString()));
        assertEquals("nf4", qlora.get("dtype").asText());
        assertEquals(dense.get("trainable_params").asLong(), qlora.get("trainable_params").asLong());
        assertTrue(qspiel.get("trainable_params").asLong() > 0);
        // block linears: 2 blocks * (q, o 64x64 + k, v 32x64 + gate, up, down 128x64) = 81920 weights, 4 bytes each
        // dense; as NF4 half a byte each, plus block constants and each array's 3 KB of lookup tables (a large share
        // at this tiny size); embedding, norms and head stay float32
        long blockLinears = 2L * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 128 * 64);
        long saved = dense.get("base_weight_bytes").asLong() - qlora.get("base_weight_bytes").asLong();
        assertTrue(saved > 2 * blockLinears && saved < 4 * blockLinears, "bytes saved: " + saved);
    }

    @Test
    void bf16IsRefusedWithTheReason() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> BenchChild.run(spec(stories(), "lora", 0, "bf16", batches.toString()))).getMessage();
        assertTrue(m.contains("bf16") && m.contains("bfloat16"), m);
    }
}
