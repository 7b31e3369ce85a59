package dev.spiel4j.service;

import dev.spiel4j.config.RunSettings;
import dev.spiel4j.data.Batch;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.ExampleEncoder;
import dev.spiel4j.data.TokenizedData;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.io.SharedAssets;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs planned as the service plans them, for the tests of one actor: stories260K on the shared instruction data,
 * 32-token sequences, on the CPU, with the run directory under the test's own directory.
 */
final class TestPlans {
    static final int SEQ_LEN = 32;

    private TestPlans() {
    }

    static Path data() {
        return SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl");
    }

    /** The plan of run {@code runId} in {@code dir}, with {@code overrides} over the defaults above. */
    static RunPlan stories260K(Path dir, String runId, String... overrides) {
        RunSettings settings = settings(dir, runId, overrides);
        return RunPlan.of(settings, ModelLoader.load(settings.model().path()));
    }

    /** The settings of run {@code runId} in {@code dir}, with {@code overrides} over the defaults above. */
    static RunSettings settings(Path dir, String runId, String... overrides) {
        List<String> o = new ArrayList<>(List.of(
                "run.id=" + runId,
                "run.dir=\"" + dir.resolve("runs") + "\"",
                "model.path=\"" + SharedAssets.file("model/stories260K.gguf") + "\"",
                "data.train=\"" + data() + "\"",
                "data.seq-len=" + SEQ_LEN,
                "device=cpu"));
        o.addAll(List.of(overrides));
        return RunSettings.from(RunSettings.load(null, o));
    }

    /** Examples {@code [from, to)} of the data as one padded batch, encoded for the plan's model. */
    static Batch batch(RunPlan plan, int from, int to) throws IOException {
        List<TokenizedExample> examples = TokenizedData.load(data(),
                new ExampleEncoder(plan.model().tokenizer(), SEQ_LEN + 1, ExampleEncoder.Overflow.TRUNCATE)).examples();
        return Batches.pad(examples.subList(from, to), SEQ_LEN);
    }
}
