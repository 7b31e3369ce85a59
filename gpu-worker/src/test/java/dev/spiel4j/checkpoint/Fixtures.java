package dev.spiel4j.checkpoint;

import dev.spiel4j.loader.HfCheckpoint;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.model.ModuleNames;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/** Seeded random sparse fine-tunings over the real stories260K-hf model. */
final class Fixtures {
    private static LoadedModel model;

    private Fixtures() {
    }

    static synchronized LoadedModel model() {
        if (model == null) {
            model = HfCheckpoint.load(SharedAssets.file("model/stories260K-hf"));
        }
        return model;
    }

    /** {@code perModule} random unique positions per block linear, values ~ N(0, scale). */
    static SparseFineTuning random(LoadedModel m, int perModule, float scale, long seed, String method) {
        Random rnd = new Random(seed);
        List<DeltaTensor> deltas = new ArrayList<>();
        for (String module : ModuleNames.allLinears(m.config().layers())) {
            long[] shape = m.tensors().get(module + ".weight").shape();
            int rows = (int) shape[0];
            int cols = (int) shape[1];
            Set<Long> picked = new LinkedHashSet<>();
            while (picked.size() < perModule) {
                picked.add((long) rnd.nextInt(rows * cols));
            }
            long[] idx = picked.stream().mapToLong(Long::longValue).toArray();
            float[] val = new float[idx.length];
            for (int j = 0; j < val.length; j++) {
                val[j] = (float) rnd.nextGaussian() * scale;
            }
            deltas.add(new DeltaTensor(module, rows, cols, idx, val));
        }
        return new SparseFineTuning(m.fingerprint(), method, Map.of("lr", "1e-4", "seed", Long.toString(seed)),
                deltas);
    }
}
