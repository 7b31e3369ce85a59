package dev.spiel4j.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.checkpoint.SftImport;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.loader.HfCheckpoint;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.sft.SpielConfig;
import org.junit.jupiter.api.Test;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A SpIEL run started from the paper's fork's adapter (src/test/resources/fork-sft, 2,485 deltas: the fork's split
 * of 2,500 over the seven block linears, the same floor split as spiel4j's count budget) holds exactly its deltas
 * before the first step and gives the fork's logits.
 */
class InitFromTest {
    private static final LoadedModel HF = HfCheckpoint.load(SharedAssets.file("model/stories260K-hf"));
    private static final ModelPlacement CPU = ModelPlacement.dense(Device.cpu(), DataType.FLOAT32);

    @Test
    void aSpielRunStartsFromTheForksAdapterAndGivesTheForksLogits() throws URISyntaxException {
        Path fork = Path.of(InitFromTest.class.getResource("/fork-sft/adapter_config.json").toURI()).getParent();
        SparseFineTuning start = SftImport.readFor(fork, HF);
        try (TrainingSession session = TrainingSession.open(HF, CPU,
                new SessionSpec(SpielConfig.ag(new Budget.Count(2500)), 10, 1f))) {
            session.initialize(start);
            List<DeltaTensor> held = session.method().exportDeltas();
            assertEquals(start.deltas().size(), held.size());
            for (DeltaTensor got : held) {
                DeltaTensor want = start.deltas().stream().filter(d -> d.module().equals(got.module()))
                        .findFirst().orElseThrow();
                assertArrayEquals(want.indices(), got.indices(), want.module());
                assertArrayEquals(want.values(), got.values(), 0f, want.module());
            }
            JsonNode expected = JsonFiles.readObject(fork.resolve("logits.json"));
            JsonNode ids = expected.get("token_ids");
            long[] tokens = new long[ids.size()];
            for (int t = 0; t < tokens.length; t++) {
                tokens[t] = ids.get(t).asLong();
            }
            double max = 0;
            try (NDManager scope = session.model().manager().newSubManager()) {
                NDArray logits = session.model().forward(scope, scope.create(tokens, new Shape(1, tokens.length)),
                        null, session.method());
                for (int t = 0; t < tokens.length; t++) {
                    float[] row = logits.get(0, t).toFloatArray();
                    for (int v = 0; v < row.length; v++) {
                        max = Math.max(max, Math.abs(row[v] - expected.get("sft_logits").get(t).get(v).asDouble()));
                    }
                }
            }
            assertTrue(max < 1e-4, "logits of the started run against the fork's: " + max);
        }
    }

    @Test
    void aStartThatDoesNotFitTheBudgetOrComesLateIsRefused() throws URISyntaxException {
        Path fork = Path.of(InitFromTest.class.getResource("/fork-sft/adapter_config.json").toURI()).getParent();
        SparseFineTuning start = SftImport.readFor(fork, HF);
        try (TrainingSession session = TrainingSession.open(HF, CPU,
                new SessionSpec(SpielConfig.ag(new Budget.Count(2000)), 10, 1f))) {
            String budget = assertThrows(IllegalArgumentException.class, () -> session.initialize(start)).getMessage();
            assertTrue(budget.contains("model.layers.0.self_attn.q_proj") && budget.contains("has 45"), budget);
        }
        try (TrainingSession lora = TrainingSession.open(HF, CPU,
                new SessionSpec(dev.spiel4j.peft.lora.LoraConfig.of(2, 4f, 0f), 10, 1f))) {
            String method = assertThrows(IllegalArgumentException.class, () -> lora.initialize(start)).getMessage();
            assertTrue(method.contains("only spiel-ag and spiel-ma"), method);
        }
    }
}
