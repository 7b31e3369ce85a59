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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Adapters written by Python, with the logits Python computed from them (src/test/resources):
 * <ul>
 *   <li>{@code fork-sft}: an SFT adapter saved by the paper's fork (AlanAnsell/peft 73b455b; 2,485 deltas, indices
 *   shuffled), by tools/fork/make_fork_fixture.py;</li>
 *   <li>{@code peft-lora}, {@code peft-ia3}: a LoRA and an (IA)3 adapter saved by Hugging Face PEFT, by
 *   tools/peft/make_peft_fixture.py.</li>
 * </ul>
 * Read by spiel4j and merged into the base, each gives Python's logits, on the Hugging Face copy of stories260K and
 * on the GGUF file, whose q and k rows are interleaved (the adapters' rows are mapped onto them).
 */
class PythonAdapterTest {
    private static final double TOLERANCE = 1e-4;

    @ParameterizedTest(name = "{0} on {1}")
    @CsvSource({"fork-sft, model/stories260K-hf", "fork-sft, model/stories260K.gguf",
            "peft-lora, model/stories260K-hf", "peft-lora, model/stories260K.gguf",
            "peft-ia3, model/stories260K-hf", "peft-ia3, model/stories260K.gguf"})
    void pythonsAdapterGivesPythonsLogits(String fixture, String base) throws URISyntaxException {
        Path adapter = Path.of(PythonAdapterTest.class.getResource("/" + fixture + "/adapter_config.json").toURI())
                .getParent();
        JsonNode expected = JsonFiles.readObject(adapter.resolve("logits.json"));
        LoadedModel model = base.endsWith(".gguf") ? GgufReader.load(SharedAssets.file(base))
                : HfCheckpoint.load(SharedAssets.file(base));
        BiFunction<Path, LoadedModel, FineTuning> reader = fixture.equals("fork-sft") ? SftImport::readPeftAdapter
                : PeftAdapter::read;
        FineTuning tuning = reader.apply(adapter, model);
        JsonNode tuned = expected.has("sft_logits") ? expected.get("sft_logits") : expected.get("adapter_logits");
        try (NDManager root = NDManager.newBaseManager();
             LlamaModel llama = LlamaModel.create(model, root, DataType.FLOAT32)) {
            double baseDiff = maxDifference(logits(llama, root, expected), expected.get("base_logits"));
            assertTrue(baseDiff < TOLERANCE, "base logits differ from Python's by " + baseDiff);
            double shift = maxDifference(logits(llama, root, expected), tuned);
            assertTrue(shift > 100 * TOLERANCE, "the adapter must move the logits for this test to mean anything: "
                    + shift);
            tuning.mergeInto(llama.weights());
            double diff = maxDifference(logits(llama, root, expected), tuned);
            assertTrue(diff < TOLERANCE, "logits with the adapter differ from Python's by " + diff);
        }
        if (tuning instanceof SparseFineTuning sft) {
            assertEquals(expected.get("num_deltas").asLong(), sft.numDeltas(), "every delta the fork saved");
        }
    }

    private static float[][] logits(LlamaModel model, NDManager root, JsonNode expected) {
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
