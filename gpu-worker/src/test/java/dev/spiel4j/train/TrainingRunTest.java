package dev.spiel4j.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.checkpoint.SparseMerge;
import dev.spiel4j.data.Batch;
import dev.spiel4j.io.GgufReader;
import dev.spiel4j.io.HfCheckpoint;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.LoadedModel;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.CausalLm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The plain training run on the real stories260K.gguf and the dolly instruction data. */
class TrainingRunTest {
    static final Path GGUF = SharedAssets.file("model/stories260K.gguf");
    static final Path DOLLY = SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl");

    @TempDir
    Path tmp;

    /** The run every test here uses: 4 examples a step in 2 micro-batches, 128 positions, 16 eval examples. */
    static TrainingOptions.Builder options(String method, Path out) {
        float lr = switch (method) {
            case "lora" -> 1e-2f;
            case "spiel-ma" -> 1e-2f;
            default -> 1e-2f;
        };
        return TrainingOptions.builder(GGUF, DOLLY, TrainingOptions.methodSpec(method, null, 4, 0f), out)
                .steps(30).batch(4, 2).seqLen(128).lr(lr).warmupFraction(0.1).seed(7).evalExamples(16);
    }

    @Test
    void sparseMethodsAndLoraLowerTheEvalLoss() throws Exception {
        for (String method : List.of("spiel-ag", "spiel-ma", "lora")) {
            Path out = tmp.resolve(method);
            List<Double> losses = new ArrayList<>();
            TrainingResult r;
            try (TrainingRun run = TrainingRun.open(options(method, out).build())) {
                r = run.run(p -> losses.add(p.loss()));
            }
            System.out.printf("%s: eval loss %.4f -> %.4f, %d params, median step %.4fs, peak RSS %.0f MiB%n",
                    method, r.evalLossBefore(), r.evalLossAfter(), r.trainableParams(), r.stepTimeMedianS(),
                    r.peakRssMb());
            assertEquals(30, losses.size());
            assertTrue(r.evalLossAfter() < r.evalLossBefore() - 0.02, method + ": " + r);
            // LoRA r=4 on q,k,v,o,gate,up,down of 5 blocks (dim 64, kv 32, ffn 172): 4 * 5 * 1156 = 23120; the
            // sparse budget floors each matrix's proportional share of the same total (35 matrices)
            if (method.equals("lora")) {
                assertEquals(23120, r.trainableParams());
            } else {
                assertTrue(r.trainableParams() > 23120 - 35 && r.trainableParams() <= 23120, method + ": " + r);
            }
            Set<String> written = Set.of(Files.list(out).map(p -> p.getFileName().toString()).toArray(String[]::new));
            String weights = method.equals("lora") ? TrainingRun.ADAPTER_FILE : TrainingRun.SPARSE_FILE;
            assertEquals(Set.of(weights, TrainingRun.STATE_FILE, TrainingRun.RESULT_FILE), written);
            assertEquals(out.resolve(weights), r.checkpoint());
            var json = JsonFiles.readObject(out.resolve(TrainingRun.RESULT_FILE));
            assertEquals(List.of("method", "trainable_params", "steps", "eval_loss_before", "eval_loss_after",
                    "step_time_median_s", "peak_rss_mb", "checkpoint"), iterable(json.fieldNames()));
            assertEquals(method, json.get("method").asText());
            if (method.equals("lora")) {
                var adapter = SafeTensors.read(r.checkpoint());
                assertEquals("lora", adapter.metadata().get("method"));
                assertEquals(GgufReader.load(GGUF).fingerprint(), adapter.metadata().get("base_fingerprint"));
                assertEquals(r.trainableParams(), adapter.tensors().values().stream().mapToLong(t -> t.numel()).sum());
            }
        }
    }

    private static List<String> iterable(java.util.Iterator<String> it) {
        List<String> out = new ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }
}
