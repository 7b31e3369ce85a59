package dev.spiel4j.train;

import org.junit.jupiter.api.Tag;
import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.checkpoint.SparseMerge;
import dev.spiel4j.data.Batch;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.ShufflePosition;
import dev.spiel4j.data.ShuffledSampler;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.loader.HfCheckpoint;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.model.WeightStorage;
import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.model.CausalLm;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.sft.SpielConfig;
import dev.spiel4j.peft.lora.LoraConfig;
import dev.spiel4j.peft.ia3.Ia3Config;
import dev.spiel4j.peft.full.FullConfig;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.sft.DropGrowSchedule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training session on the real stories260K.gguf and the dolly instruction data, on the CPU (where a step is a
 * deterministic function of its inputs, so runs are compared bit for bit).
 */
@Tag("slow")
class TrainingSessionTest {
    static final Path GGUF = SharedAssets.file("model/stories260K.gguf");
    static final Path DOLLY = SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl");
    static final LoadedModel LOADED = ModelLoader.load(GGUF);
    static final ModelPlacement CPU = ModelPlacement.dense(Device.cpu(), DataType.FLOAT32);

    @TempDir
    Path tmp;

    /** The dolly examples in rows of at most 128 positions, the last {@code evalExamples} held out. */
    static TrainingData data(int evalExamples) {
        return TrainingData.load(DOLLY, null, LOADED.tokenizer(), 128, evalExamples);
    }

    /** A run's data: training examples in a seeded order, {@code batch} a step in micro-batches of {@code micro}. */
    static final class Feed {
        private final ShuffledSampler<TokenizedExample> sampler;
        private final int batch;
        private final int micro;
        private ShufflePosition position;

        Feed(TrainingData data, long seed, int batch, int micro, ShufflePosition from) {
            this.sampler = new ShuffledSampler<>(data.train(), seed);
            this.batch = batch;
            this.micro = micro;
            this.position = from;
        }

        List<Batch> next() {
            ShuffledSampler.Draw<TokenizedExample> draw = sampler.draw(position, batch);
            position = draw.next();
            List<Batch> out = new ArrayList<>();
            for (int i = 0; i < batch; i += micro) {
                out.add(Batches.pad(draw.items().subList(i, i + micro), 0));
            }
            return out;
        }
    }

    /** Runs the session's steps after the last completed one through {@code lastStep}; returns their results. */
    static List<StepResult> trainUntil(TrainingSession session, Feed feed, LrSchedule lr, int lastStep) {
        List<StepResult> results = new ArrayList<>();
        for (int t = session.completedSteps() + 1; t <= lastStep; t++) {
            StepResult r = session.step(feed.next(), lr.at(t));
            assertFalse(r.skipped(), session.method().name() + " step " + t + " was skipped: gradient norm "
                    + r.gradNorm());
            assertEquals(t, session.completedSteps());
            results.add(r);
        }
        return results;
    }

    /** LoRA of rank 4 (alpha 8), or a sparse method at LoRA rank 4's budget; no weight decay; the run's seed. */
    static MethodConfig method(String name, long seed) {
        return switch (name) {
            case "spiel-ag" -> SpielConfig.ag(new Budget.MatchLoraRank(4)).withSeed(seed);
            case "spiel-ma" -> SpielConfig.ma(new Budget.MatchLoraRank(4)).withSeed(seed);
            case "lora" -> LoraConfig.of(4, 8f, 0f).withSeed(seed);
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** {@link #method}, with a sparse method reselecting often (after steps 2, 6, 10, ...) so short runs cross it. */
    static MethodConfig busy(String name, long seed) {
        MethodConfig config = method(name, seed);
        return config instanceof SpielConfig spiel ? spiel.withSchedule(4, 2, 0.3, DropGrowSchedule.Kind.LINEAR)
                : config;
    }

    static TrainingSession open(MethodConfig method, int steps) {
        return TrainingSession.open(LOADED, CPU, new SessionSpec(method, steps, 1f));
    }

    /**
     * The loss and memory runs use one micro-batch of 4: LoRA with 2 micro-batches of 2 hit a NaN gradient at a
     * varying step in repeated runs (README "Known defect"); gradient accumulation is covered by the resume test.
     */
    @Test
    void sparseMethodsAndLoraLowerTheEvalLoss() {
        TrainingData data = data(16);
        List<Batch> eval = TrainingData.batches(data.eval(), 4);
        for (String name : List.of("spiel-ag", "spiel-ma", "lora")) {
            try (TrainingSession session = open(method(name, 7), 30)) {
                double before = session.evaluate(eval);
                List<StepResult> steps = trainUntil(session, new Feed(data, 7, 4, 4, ShufflePosition.START),
                        LrSchedule.warmupLinearDecay(1e-2f, 3, 30), 30);
                double after = session.evaluate(eval);
                long params = session.method().trainableParameters();
                System.out.printf("%s: eval loss %.4f -> %.4f, %d params%n", name, before, after, params);
                assertTrue(steps.stream().allMatch(r -> Double.isFinite(r.loss())), name + ": " + steps);
                assertTrue(after < before - 0.02, name + ": eval loss " + before + " -> " + after);
                assertEquals(after, session.evaluate(eval), name + ": evaluating again gives the same loss");
                // LoRA r=4 on q,k,v,o,gate,up,down of 5 blocks (dim 64, kv 32, ffn 172): 4 * 5 * 1156 = 23120; the
                // sparse budget floors each matrix's proportional share of the same total (35 matrices)
                if (name.equals("lora")) {
                    assertEquals(23120, params);
                } else {
                    assertTrue(params > 23120 - 35 && params <= 23120, name + ": " + params);
                }
            }
        }
    }

    /**
     * VmRSS includes the Java heap, which grows with garbage until the collector runs; a full collection before
     * each sample (between steps; G1 then returns free heap regions) leaves the memory the session actually keeps.
     */
    @ParameterizedTest
    @EnumSource(BackwardPass.class)
    void residentMemoryStopsGrowingAfterWarmUp(BackwardPass pass) {
        long[] rss = new long[51];
        int[] arrays = new int[51];
        Set<Integer> samples = Set.of(1, 5, 15, 25, 50);
        TrainingData data = data(16);
        try (TrainingSession session = TrainingSession.open(LOADED, CPU,
                new SessionSpec(method("spiel-ag", 7), 50, 1f, pass))) {
            Feed feed = new Feed(data, 7, 4, 4, ShufflePosition.START);
            LrSchedule lr = LrSchedule.warmupLinearDecay(1e-2f, 5, 50);
            for (int t = 1; t <= 50; t++) {
                trainUntil(session, feed, lr, t);
                if (samples.contains(t)) {
                    System.gc();
                    rss[t] = ProcMemory.selfStatusBytes("VmRSS").orElseThrow();
                    arrays[t] = session.model().manager().getManagedArrays().size();
                }
            }
        }
        long mib = 1 << 20;
        System.out.printf("%s: VmRSS at steps 1, 5, 15, 25, 50: %d, %d, %d, %d, %d MiB%n", pass, rss[1] / mib, rss[5] / mib,
                rss[15] / mib, rss[25] / mib, rss[50] / mib);
        // Exact: no step leaves an array behind in the model's manager (every step's scope is closed).
        assertEquals(arrays[5], arrays[50], "arrays in the model's manager at steps 5 and 50");
        // Coarse: the allocator's own noise was measured up to 21 MiB over these 25 steps on a loaded 2-core
        // machine; a leak of one step's logits (4 x 128 x 512 floats = 1 MiB) adds 25 MiB, of two 50 MiB.
        assertTrue(rss[50] - rss[25] < 40 * mib,
                "RSS grew by " + (rss[50] - rss[25]) / mib + " MiB from step 25 to 50");
    }

    /**
     * Exact, for every method: the engine arrays held under the model's manager after each step take at most two
     * values from step 3 on (in and out of SpIEL-AG's selection phases), so no step leaves an array behind in a
     * long-lived manager. A reselection can hide such a leak from a before/after comparison (SM3's kept grouping, and
     * anything attached to it, is replaced then): here every step is compared, over several reselections.
     */
    @ParameterizedTest
    @ValueSource(strings = {"spiel-ag", "spiel-ma", "lora", "ia3", "full"})
    void noStepLeavesEngineArraysBehind(String name) {
        MethodConfig spec = switch (name) {
            case "ia3" -> Ia3Config.defaults();
            case "full" -> FullConfig.defaults();
            default -> busy(name, 3);
        };
        TrainingData data = data(8);
        Set<Integer> counts = new TreeSet<>();
        try (TrainingSession session = TrainingSession.open(LOADED, CPU, SessionSpec.unclipped(spec, 16))) {
            Feed feed = new Feed(data, 3, 4, 4, ShufflePosition.START);
            for (int t = 1; t <= 16; t++) {
                trainUntil(session, feed, LrSchedule.constant(1e-3f), t);
                if (t >= 3) {
                    counts.add(session.model().manager().getManagedArrays().size());
                }
            }
        }
        assertTrue(counts.size() <= 2, name + ": arrays held after steps 3-16 took the values " + counts);
    }

    @Test
    void savedFineTuningMergesIntoAFreshModelAndGivesTheTrainingTimeLogits() {
        TrainingData data = data(8);
        Batch batch = TrainingData.batches(data.eval(), 4).get(0);
        Path file = tmp.resolve("trained.sft");
        float[] trained;
        try (TrainingSession session = open(busy("spiel-ag", 0), 12)) {
            trainUntil(session, new Feed(data, 0, 4, 4, ShufflePosition.START),
                    LrSchedule.warmupLinearDecay(1e-2f, 1, 12), 12);
            trained = logits(session.model(), batch, session.method());
            new SparseFineTuning(LOADED.fingerprint(), session.method().name(), Map.of(),
                    session.method().exportDeltas()).save(file);
        }
        SparseFineTuning sft = SparseFineTuning.load(file);
        sft.requireBase(LOADED.fingerprint());
        try (EngineModel fresh = EngineModel.load(LOADED, CPU)) {
            float[] base = logits(fresh.model(), batch, LinearLayers.DENSE);
            assertTrue(maxAbsDiff(base, trained) > 1e-2, "training changed the logits");
            SparseMerge.Originals originals = SparseMerge.merge(sft, fresh.model().weights());
            float[] merged = logits(fresh.model(), batch, LinearLayers.DENSE);
            assertTrue(maxAbsDiff(trained, merged) < 1e-5, "merged vs training-time: " + maxAbsDiff(trained, merged));
            SparseMerge.restore(originals, fresh.model().weights());
            assertArrayEquals(base, logits(fresh.model(), batch, LinearLayers.DENSE), "restored base");
            // subtracting instead leaves float rounding: close, but not exact (measured ~3e-5 on the logits)
            SparseMerge.merge(sft, fresh.model().weights());
            SparseMerge.unmerge(sft, fresh.model().weights());
            assertTrue(maxAbsDiff(base, logits(fresh.model(), batch, LinearLayers.DENSE)) < 1e-3);
        }
        String otherBase = HfCheckpoint.load(SharedAssets.file("model/stories260K-hf")).fingerprint();
        String message = assertThrows(IllegalStateException.class, () -> sft.requireBase(otherBase)).getMessage();
        assertTrue(message.contains(otherBase) && message.contains(LOADED.fingerprint()), message);
    }

    static float[] logits(CausalLm model, Batch b, LinearLayers linears) {
        try (NDManager scope = model.manager().newSubManager()) {
            Shape shape = new Shape(b.size(), b.seqLen());
            NDArray out = model.forward(scope, scope.create(b.inputs(), shape), scope.create(b.attentionMask(), shape),
                    linears);
            return out.toFloatArray();
        }
    }

    static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - b[i]));
        }
        return max;
    }

    /** The state after 8 steps of SpIEL-AG (reselecting after steps 2 and 6) with {@code seed}. */
    private static MethodState eightSteps(TrainingData data, long seed) {
        try (TrainingSession session = open(busy("spiel-ag", seed), 8)) {
            trainUntil(session, new Feed(data, seed, 4, 4, ShufflePosition.START),
                    LrSchedule.warmupLinearDecay(1e-2f, 1, 8), 8);
            return session.state();
        }
    }

    @Test
    void theSameSeedGivesABitwiseIdenticalRunAndAnotherSeedDoesNot() {
        TrainingData data = data(8);
        MethodState a = eightSteps(data, 3);
        MethodState b = eightSteps(data, 3);
        MethodState c = eightSteps(data, 4);
        assertBitwiseEqual(a, b);
        String indices = "model.layers.0.self_attn.q_proj.sft_delta.indices";
        assertFalse(Arrays.equals(HostArrays.longs(a.require(indices)), HostArrays.longs(c.require(indices))),
                "another seed, other initial indices");
    }

    /**
     * The interrupted run stops inside SpIEL's selection phase before the step-6 reselection (so the restored state
     * carries accumulated candidate statistics) and trains with two micro-batches a step.
     */
    @Test
    void aSessionResumedFromAStateEndsBitForBitWhereTheUninterruptedRunEnds() {
        TrainingData data = data(8);
        LrSchedule lr = LrSchedule.warmupLinearDecay(1e-2f, 1, 10);
        for (String name : List.of("spiel-ag", "spiel-ma", "lora")) {
            MethodConfig method = busy(name, 5);
            MethodState straight;
            try (TrainingSession session = open(method, 10)) {
                trainUntil(session, new Feed(data, 5, 4, 2, ShufflePosition.START), lr, 10);
                straight = session.state();
            }
            MethodState saved;
            ShufflePosition position;
            try (TrainingSession session = open(method, 10)) {
                Feed feed = new Feed(data, 5, 4, 2, ShufflePosition.START);
                trainUntil(session, feed, lr, 5);
                saved = session.state();
                position = feed.position;
            }
            assertEquals(5, saved.step());
            try (TrainingSession session = open(method, 10)) {
                session.resume(saved);
                assertEquals(5, session.completedSteps());
                List<StepResult> rest = trainUntil(session, new Feed(data, 5, 4, 2, position), lr, 10);
                assertEquals(5, rest.size(), name + ": steps 6 to 10");
                assertBitwiseEqual(straight, session.state());
            }
        }
    }

    /** Same method, step and tensors (names, dtypes, shapes, every bit of every value). */
    static void assertBitwiseEqual(MethodState expected, MethodState actual) {
        assertEquals(expected.method(), actual.method());
        assertEquals(expected.step(), actual.step(), "steps");
        assertEquals(expected.tensors().keySet(), actual.tensors().keySet(), expected.method() + " state tensors");
        for (HostTensor e : expected.tensors().values()) {
            HostTensor a = actual.require(e.name());
            assertEquals(e.dtype(), a.dtype(), e.name());
            assertArrayEquals(e.shape(), a.shape(), e.name());
            switch (e.dtype()) {
                // JUnit compares floats by their bits here (no delta)
                case F32 -> assertArrayEquals(HostArrays.floats(e), HostArrays.floats(a), e.name());
                case I64 -> assertArrayEquals(HostArrays.longs(e), HostArrays.longs(a), e.name());
                case I32 -> assertArrayEquals(HostArrays.ints(e), HostArrays.ints(a), e.name());
                default -> assertEquals(e.data(), a.data(), e.name() + " bytes");
            }
        }
    }

    @Test
    void resumeRefusesAnotherMethodsStateAndAStepBeyondTheTotal() {
        TrainingData data = data(8);
        List<Batch> eval = TrainingData.batches(data.eval(), 4);
        MethodState lora;
        try (TrainingSession session = open(method("lora", 1), 4)) {
            lora = session.state();
        }
        try (TrainingSession session = open(method("spiel-ag", 1), 4)) {
            String other = assertThrows(IllegalArgumentException.class, () -> session.resume(lora)).getMessage();
            assertTrue(other.contains("lora") && other.contains("spiel-ag"), other);
            MethodState initial = session.state();
            MethodState beyond = new MethodState(initial.method(), 5, initial.tensors());
            String late = assertThrows(IllegalArgumentException.class, () -> session.resume(beyond)).getMessage();
            assertTrue(late.contains("step 5") && late.contains("4 steps"), late);
            assertEquals(0, session.completedSteps(), "a refused state changes nothing");

            // a state of the last step is a finished run: it resumes, and no step is left
            double before = session.evaluate(eval);
            session.resume(new MethodState(initial.method(), 4, initial.tensors()));
            assertEquals(4, session.completedSteps());
            String done = assertThrows(IllegalStateException.class,
                    () -> session.step(new Feed(data, 1, 4, 4, ShufflePosition.START).next(), 1e-2f)).getMessage();
            assertTrue(done.contains("all 4 steps"), done);
            assertEquals(before, session.evaluate(eval), "the same values score the same");
        }
    }

    @Test
    void aFailedOpenClosesTheModelAndCloseReleasesEverythingOnce() {
        EngineModel base = EngineModel.load(LOADED, CPU);
        SessionSpec nothing = new SessionSpec(LoraConfig.of(4, 8f, 0f).withTargets(List.of("no_such_proj")), 4, 1f);
        String m = assertThrows(IllegalArgumentException.class, () -> TrainingSession.open(base, nothing))
                .getMessage();
        assertTrue(m.contains("no_such_proj"), m);
        assertFalse(base.model().manager().isOpen(), "the session owned the model it could not be built on");

        TrainingSession session = open(method("spiel-ag", 1), 4);
        NDManager weights = session.model().manager();
        session.close();
        assertFalse(weights.isOpen(), "closing the session closes the model");
        assertDoesNotThrow(session::close, "closing twice");
        assertThrows(IllegalStateException.class, () -> session.evaluate(List.of()));
    }

    @Test
    void specsAndPlacementsRefuseBadValuesByName() {
        MethodConfig lora = method("lora", 0);
        String steps = assertThrows(IllegalArgumentException.class, () -> new SessionSpec(lora, 0, 1f)).getMessage();
        assertTrue(steps.contains("total steps") && steps.contains("0"), steps);
        String clip = assertThrows(IllegalArgumentException.class, () -> new SessionSpec(lora, 4, Float.NaN))
                .getMessage();
        assertTrue(clip.contains("max gradient norm"), clip);
        String bf16 = assertThrows(IllegalArgumentException.class,
                () -> ModelPlacement.dense(Device.cpu(), DataType.BFLOAT16)).getMessage();
        assertTrue(bf16.contains("float32 or float16"), bf16);
        assertEquals(DataType.FLOAT16, ModelPlacement.computeType("float16"));
        String name = assertThrows(IllegalArgumentException.class, () -> ModelPlacement.computeType("bfloat16"))
                .getMessage();
        assertTrue(name.contains("'bfloat16'"), name);
        assertEquals(WeightStorage.NF4, ModelPlacement.storage("nf4"));
        String quantize = assertThrows(IllegalArgumentException.class, () -> ModelPlacement.storage("int8"))
                .getMessage();
        assertTrue(quantize.contains("none or nf4") && quantize.contains("'int8'"), quantize);
    }
}
