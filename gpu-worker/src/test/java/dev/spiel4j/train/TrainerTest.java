package dev.spiel4j.train;

import static org.junit.jupiter.api.Assertions.assertFalse;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.data.Batch;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.sft.SpielConfig;
import dev.spiel4j.peft.lora.LoraConfig;
import dev.spiel4j.peft.ia3.Ia3Config;
import dev.spiel4j.peft.full.FullConfig;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.MethodState;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainerTest {
    private static final int VOCAB = 16;

    private static MethodConfig spec(String method, long seed) {
        return switch (method) {
            case "spiel-ag" -> SpielConfig.ag(new Budget.Density(0.2)).withSchedule(6, 2, 0.3,
                    dev.spiel4j.peft.sft.DropGrowSchedule.Kind.LINEAR).withSeed(seed);
            case "spiel-ma" -> SpielConfig.ma(new Budget.Density(0.2)).withSchedule(6, 2, 0.3,
                    dev.spiel4j.peft.sft.DropGrowSchedule.Kind.COSINE).withSeed(seed);
            case "lora" -> LoraConfig.of(4, 8f, 0.1f).withSeed(seed);
            case "ia3" -> Ia3Config.defaults();
            default -> FullConfig.defaults();
        };
    }

    private static float lr(String method) {
        return switch (method) {
            case "spiel-ma" -> 0.05f;
            case "ia3" -> 0.05f;
            default -> 0.02f;
        };
    }

    @Test
    void everyMethodReducesTheLoss() {
        List<Batch> data = TinyLm.rule(VOCAB, 4, 8, 8, 1);
        List<Batch> eval = TinyLm.rule(VOCAB, 2, 4, 8, 99);
        for (String name : List.of("spiel-ag", "spiel-ma", "lora", "ia3", "full")) {
            try (TinyLm model = new TinyLm(VOCAB, 16, 32, 7)) {
                int steps = 30;
                FineTuningMethod method = spec(name, 3).create(model, steps);
                Trainer trainer = new Trainer(model, method, 1.0f);
                double before = trainer.evaluate(eval);
                LrSchedule lr = LrSchedule.warmupLinearDecay(lr(name), 2, steps);
                int reselections = 0;
                for (int t = 1; t <= steps; t++) {
                    StepResult r = trainer.step(List.of(data.get(t % 4)), lr.at(t));
                    assertTrue(Double.isFinite(r.loss()) && r.gradNorm() > 0, name + " step " + t + ": " + r);
                    reselections += r.reselected() ? 1 : 0;
                }
                double after = trainer.evaluate(eval);
                assertTrue(after < 0.8 * before, name + ": eval loss " + before + " -> " + after);
                if (name.startsWith("spiel")) {
                    assertEquals(5, reselections, name + " reselects at 2, 8, 14, 20, 26");
                }
            }
        }
    }

    @Test
    void aNonFiniteGradientSkipsTheUpdateAndLeavesTheMethodUsable() {
        List<Batch> data = TinyLm.rule(VOCAB, 2, 4, 8, 5);
        // Step 1 starts SpIEL-AG's first selection phase: candidates are chosen from the dense gradient, which a NaN
        // once made crash (ArrayIndexOutOfBoundsException) instead of skipping. Full fine-tuning must clear the NaN
        // its weights' .grad accumulated (muli(0) kept it).
        for (String name : List.of("spiel-ag", "spiel-ma", "lora", "ia3", "full")) {
            try (TinyLm model = new TinyLm(VOCAB, 16, 32, 7)) {
                FineTuningMethod method = spec(name, 3).create(model, 10);
                Trainer trainer = new Trainer(model, method, 1.0f);
                var before = method.exportTensors();
                NDArray head = model.weights().get("lm_head.weight");
                float original = head.getFloat(0, 0);
                head.set(new NDIndex(0, 0), Float.NaN);
                StepResult poisoned = trainer.step(List.of(data.get(1)), 0.02f);
                head.set(new NDIndex(0, 0), original);
                assertTrue(poisoned.skipped(), name + ": " + poisoned);
                var after = method.exportTensors();
                for (var e : before.entrySet()) {
                    assertEquals(e.getValue().data(), after.get(e.getKey()).data(),
                            name + " " + e.getKey() + " changed by a skipped step");
                }
                assertEquals(0, trainer.completedSteps(), "a skipped update does not count as a step");
                for (int t = 1; t <= 3; t++) {
                    StepResult next = trainer.step(List.of(data.get(t % 2)), 0.02f);
                    assertFalse(next.skipped(), name + " step " + t + ": " + next);
                }
                assertEquals(3, trainer.completedSteps());
            }
        }
    }

    @Test
    void microBatchesAccumulateToTheFullBatchGradient() {
        List<Batch> data = TinyLm.rule(VOCAB, 2, 3, 5, 4);
        Batch merged = concat(data.get(0), data.get(1));
        float[][] results = new float[2][];
        for (int run = 0; run < 2; run++) {
            try (TinyLm model = new TinyLm(VOCAB, 8, 12, 7)) {
                FineTuningMethod m = SpielConfig.ag(new Budget.Count(40)).withSeed(1).create(model, 10);
                Trainer trainer = new Trainer(model, m, Float.POSITIVE_INFINITY);
                StepResult r = trainer.step(run == 0 ? data : List.of(merged), 0.01f);
                results[run] = new float[]{(float) r.loss(), (float) r.gradNorm()};
            }
        }
        assertArrayEquals(results[1], results[0], 1e-5f);
    }

    @Test
    void sameSeedGivesIdenticalDeltasAndStateResumesExactly() {
        List<Batch> data = TinyLm.rule(VOCAB, 3, 4, 6, 2);
        List<DeltaTensor> first = trainAg(data, 12, null);
        List<DeltaTensor> second = trainAg(data, 12, null);
        for (int i = 0; i < first.size(); i++) {
            assertArrayEquals(first.get(i).indices(), second.get(i).indices());
            assertArrayEquals(first.get(i).values(), second.get(i).values());
        }
        List<DeltaTensor> resumed = trainAg(data, 12, 7);
        for (int i = 0; i < first.size(); i++) {
            assertArrayEquals(first.get(i).indices(), resumed.get(i).indices(), "resumed run, same indices");
            assertArrayEquals(first.get(i).values(), resumed.get(i).values(), "resumed run, same values");
        }
    }

    /** Trains SpIEL-AG for {@code steps}; with {@code stopAt}, saves state there and resumes in a fresh method. */
    private static List<DeltaTensor> trainAg(List<Batch> data, int steps, Integer stopAt) {
        MethodConfig spec = SpielConfig.ag(new Budget.Density(0.1)).withSchedule(4, 2, 0.5,
                dev.spiel4j.peft.sft.DropGrowSchedule.Kind.LINEAR)
                .withOptimizer(OptimizerSettings.DEFAULTS.withWeightDecay(0.1f)).withSeed(9);
        try (TinyLm model = new TinyLm(VOCAB, 8, 12, 5)) {
            FineTuningMethod m = spec.create(model, steps);
            Trainer trainer = new Trainer(model, m, 1f);
            for (int t = 1; t <= steps; t++) {
                if (stopAt != null && t == stopAt + 1) {
                    MethodState state = m.state();
                    m.close(); // a SpIEL method puts the base weights back; a second one is refused until then
                    m = spec.create(model, steps);
                    m.restore(state);
                    trainer = new Trainer(model, m, 1f, state.step());
                }
                trainer.step(List.of(data.get(t % data.size())), 0.01f);
            }
            return m.exportDeltas();
        }
    }

    @Test
    void fiftyStepsDoNotGrowNativeMemory() {
        List<Batch> data = TinyLm.rule(VOCAB, 2, 4, 8, 3);
        for (String name : List.of("spiel-ag", "lora", "full")) {
            try (TinyLm model = new TinyLm(VOCAB, 16, 32, 7)) {
                FineTuningMethod m = spec(name, 0).create(model, 60);
                Trainer trainer = new Trainer(model, m, 1f);
                int[] live = new int[51];
                for (int t = 1; t <= 50; t++) {
                    trainer.step(List.of(data.get(t % 2)), 0.01f);
                    live[t] = model.manager().getManagedArrays().size();
                }
                assertEquals(live[5], live[50], name + ": arrays alive after step 5 vs 50");
                // The counter sees a leak: an op on a weight attaches its result to the model's manager.
                model.weights().get(TinyLm.UP + ".weight").transpose();
                assertEquals(live[50] + 1, model.manager().getManagedArrays().size());
            }
        }
    }

    @Test
    void loraStartsAtTheBaseModelWithRTimesInPlusOutParameters() {
        try (TinyLm model = new TinyLm(VOCAB, 8, 12, 7); NDManager scope = model.manager().newSubManager()) {
            FineTuningMethod lora = LoraConfig.of(3, 16f, 0f).create(model, 10);
            // Targets of the tiny model: v (8x8), up (12x8), down (8x12).
            assertEquals(3L * ((8 + 8) + (12 + 8) + (8 + 12)), lora.trainableParameters());
            NDArray tokens = scope.create(new long[]{1, 2, 3, 4, 5, 6}, new Shape(2, 3));
            float[] base = model.forward(scope, tokens, null, LinearLayers.DENSE).toFloatArray();
            float[] withLora = model.forward(scope, tokens, null, lora).toFloatArray();
            assertArrayEquals(base, withLora, 1e-6f);
            FineTuningMethod ag = SpielConfig.ag(new Budget.MatchLoraRank(3)).create(model, 10);
            assertEquals(lora.trainableParameters(), ag.trainableParameters(), 2, "budget matching LoRA r=3 (floor per matrix)");
            assertArrayEquals(base, model.forward(scope, tokens, null, ag).toFloatArray(), 1e-6f, "phi starts at 0");
        }
    }

    @Test
    void aFailedStepLeavesTheMethodUsable() {
        List<Batch> data = TinyLm.rule(VOCAB, 1, 2, 4, 1);
        Batch good = data.get(0);
        long[] badTargets = good.targets().clone();
        badTargets[0] = VOCAB + 5;
        Batch bad = new Batch(good.size(), good.seqLen(), good.inputs(), badTargets, good.lossMask(),
                good.attentionMask(), good.exampleIds());
        for (String name : List.of("spiel-ag", "lora", "full")) {
            try (TinyLm model = new TinyLm(VOCAB, 8, 12, 7)) {
                FineTuningMethod m = spec(name, 0).create(model, 10);
                Trainer trainer = new Trainer(model, m, 1f);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> trainer.step(List.of(bad), 0.01f));
                assertTrue(e.getMessage().contains("target id " + (VOCAB + 5)), e.getMessage());
                assertEquals(0, trainer.completedSteps());
                assertTrue(Double.isFinite(trainer.step(List.of(good), 0.01f).loss()), name + " trains after a failure");
            }
        }
    }

    private static Batch concat(Batch a, Batch b) {
        return new Batch(a.size() + b.size(), a.seqLen(), cat(a.inputs(), b.inputs()), cat(a.targets(), b.targets()),
                cat(a.lossMask(), b.lossMask()), cat(a.attentionMask(), b.attentionMask()),
                java.util.stream.Stream.concat(a.exampleIds().stream(), b.exampleIds().stream()).toList());
    }

    private static long[] cat(long[] a, long[] b) {
        long[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    private static float[] cat(float[] a, float[] b) {
        float[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
