package dev.spiel4j.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.loader.HfCheckpoint;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.LoadedModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URISyntaxException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An SFT adapter made and saved by the paper's released fork (src/test/resources/fork-sft, written by
 * tools/fork/make_fork_fixture.py with the logits the fork computes from it): read by spiel4j, merged into the base,
 * it gives the fork's logits, on the Hugging Face copy of stories260K and on the GGUF file, whose q and k rows are
 * interleaved (the adapter's indices are mapped onto them).
 */
class ForkAdapterTest {
    private static final double TOLERANCE = 1e-4;
    private static Path adapter;
    private static JsonNode expected;

    @BeforeAll
    static void readFixture() throws URISyntaxException {
        adapter = Path.of(ForkAdapterTest.class.getResource("/fork-sft/adapter_config.json").toURI()).getParent();
        expected = JsonFiles.readObject(adapter.resolve("logits.json"));
    }

    @Test
    void theForksAdapterGivesTheForksLogitsOnTheHfBase() {
        assertForkLogits(HfCheckpoint.load(SharedAssets.file("model/stories260K-hf")));
    }

    @Test
    void theForksAdapterGivesTheForksLogitsOnTheGgufBase() {
        assertForkLogits(GgufReader.load(SharedAssets.file("model/stories260K.gguf")));
    }

    private static void assertForkLogits(LoadedModel base) {
        SparseFineTuning sft = SftImport.readPeftAdapter(adapter, base);
        assertEquals(expected.get("num_deltas").asLong(), sft.numDeltas(), "every delta the fork saved");
        try (NDManager root = NDManager.newBaseManager();
             LlamaModel model = LlamaModel.create(base, root, DataType.FLOAT32)) {
            double baseDiff = maxDifference(logits(model, root), expected.get("base_logits"));
            assertTrue(baseDiff < TOLERANCE, "base logits differ from the fork's by " + baseDiff);
            double shift = maxDifference(logits(model, root), expected.get("sft_logits"));
            assertTrue(shift > 100 * TOLERANCE, "the adapter must move the logits for this test to mean anything: "
                    + shift);
            SparseMerge.merge(sft, model.weights());
            double sftDiff = maxDifference(logits(model, root), expected.get("sft_logits"));
            assertTrue(sftDiff < TOLERANCE, "logits with the adapter differ from the fork's by " + sftDiff);
        }
    }

    private static float[][] logits(LlamaModel model, NDManager root) {
        JsonNode ids = expected.get("token_ids");
        long[] tokens = new long[ids.size()];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = ids.get(i).asLong();
        }
        try (NDManager scope = root.newSubManager()) {
            NDArray out = model.forward(scope, scope.create(tokens, new Shape(1, tokens.length)), null,
                    LinearLayers.DENSE);
            float[][] rows = new float[tokens.length][];
            for (int t = 0; t < tokens.length; t++) {
                rows[t] = out.get(0, t).toFloatArray();
            }
            return rows;
        }
    }

    private static double maxDifference(float[][] actual, JsonNode reference) {
        assertEquals(reference.size(), actual.length, "positions");
        double max = 0;
        for (int t = 0; t < actual.length; t++) {
            JsonNode row = reference.get(t);
            assertEquals(row.size(), actual[t].length, "vocabulary");
            for (int v = 0; v < actual[t].length; v++) {
                max = Math.max(max, Math.abs(actual[t][v] - row.get(v).asDouble()));
            }
        }
        return max;
    }
}
