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
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.MethodSpec;
import dev.spiel4j.peft.sft.DropGrowSchedule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

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

    /**
     * The run of the loss and memory tests: 4 examples a step, 128 positions, 16 eval examples. One micro-batch:
     * LoRA with 2 micro-batches of 2 hit a NaN / 4e17 gradient norm at a varying step (20 or 29) in repeated
     * identical runs, an engine defect under investigation; gradient accumulation is covered by the resume test.
     */
    static TrainingOptions.Builder options(String method, Path out) {
        return TrainingOptions.builder(GGUF, DOLLY, TrainingOptions.methodSpec(method, null, 4, 0f), out)
                .steps(30).batch(4, 4).seqLen(128).lr(1e-2f).warmupFraction(0.1).seed(7).evalExamples(16);
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
            assertTrue(losses.stream().allMatch(Double::isFinite), method + " losses: " + losses);
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

    /**
     * VmRSS includes the Java heap, which grows with garbage until the collector runs; a full collection before
     * each sample (G1 then returns free heap regions) leaves the memory the run actually keeps.
     */
    @Test
    void residentMemoryStopsGrowingAfterWarmUp() {
        long[] rss = new long[51];
        int[] arrays = new int[51];
        Set<Integer> samples = Set.of(1, 5, 15, 25, 50);
        try (TrainingRun run = TrainingRun.open(options("spiel-ag", tmp.resolve("memory")).steps(50).build())) {
            run.trainUntil(50, p -> {
                if (samples.contains(p.step())) {
                    System.gc();
                    rss[p.step()] = ProcMemory.selfStatusBytes("VmRSS").orElseThrow();
                    arrays[p.step()] = run.model().manager().getManagedArrays().size();
                }
            });
        }
        long mib = 1 << 20;
        System.out.printf("VmRSS at steps 1, 5, 15, 25, 50: %d, %d, %d, %d, %d MiB%n", rss[1] / mib, rss[5] / mib,
                rss[15] / mib, rss[25] / mib, rss[50] / mib);
        // Exact: no step leaves an array behind in the model's manager (every step's scope is closed).
        assertEquals(arrays[5], arrays[50], "arrays in the model's manager at steps 5 and 50");
        // Coarse: the allocator's own noise was measured up to 21 MiB over these 25 steps on a loaded 2-core
        // machine; a leak of one step's logits (4 x 128 x 512 floats = 1 MiB) adds 25 MiB, of two 50 MiB.
        assertTrue(rss[50] - rss[25] < 40 * mib, "RSS grew by " + (rss[50] - rss[25]) / mib + " MiB from step 25 to 50");
    }

    /** A sparse method that reselects often (at steps 2, 6, 10, ...), so short runs cross selection phases. */
    static MethodSpec busySpielAg() {
        return MethodSpec.spielAg(new Budget.MatchLoraRank(4)).withSchedule(4, 2, 0.3, DropGrowSchedule.Kind.LINEAR);
    }

    @Test
    void savedFineTuningMergesIntoAFreshModelAndGivesTheTrainingTimeLogits() {
        Path out = tmp.resolve("merge");
        Batch batch;
        float[] trained;
        try (TrainingRun run = TrainingRun.open(TrainingOptions.builder(GGUF, DOLLY, busySpielAg(), out).steps(12)
                .batch(4, 4).seqLen(128).lr(1e-2f).evalExamples(8).build())) {
            run.run(TrainingListener.SILENT);
            batch = run.data().evalBatches(4).get(0);
            trained = logits(run.model(), batch, run.method());
        }
        SparseFineTuning sft = SparseFineTuning.load(out.resolve(TrainingRun.SPARSE_FILE));
        LoadedModel loaded = GgufReader.load(GGUF);
        sft.requireBase(loaded.fingerprint());
        try (NDManager root = NDManager.newBaseManager();
             LlamaModel fresh = LlamaModel.create(loaded, root, DataType.FLOAT32)) {
            float[] base = logits(fresh, batch, LinearLayers.DENSE);
            assertTrue(maxAbsDiff(base, trained) > 1e-2, "training changed the logits");
            SparseMerge.Originals originals = SparseMerge.merge(sft, fresh.weights());
            float[] merged = logits(fresh, batch, LinearLayers.DENSE);
            assertTrue(maxAbsDiff(trained, merged) < 1e-5, "merged vs training-time: " + maxAbsDiff(trained, merged));
            SparseMerge.restore(originals, fresh.weights());
            float[] restored = logits(fresh, batch, LinearLayers.DENSE);
            assertTrue(maxAbsDiff(base, restored) < 1e-5, "restored vs base: " + maxAbsDiff(base, restored));
            // subtracting instead leaves float rounding: close, but not exact (measured ~3e-5 on the logits)
            SparseMerge.merge(sft, fresh.weights());
            SparseMerge.unmerge(sft, fresh.weights());
            assertTrue(maxAbsDiff(base, logits(fresh, batch, LinearLayers.DENSE)) < 1e-3);
        }
        String otherBase = HfCheckpoint.load(SharedAssets.file("model/stories260K-hf")).fingerprint();
        String message = assertThrows(IllegalStateException.class, () -> sft.requireBase(otherBase)).getMessage();
        assertTrue(message.contains(otherBase) && message.contains(loaded.fingerprint()), message);
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

    /**
     * Collects garbage after every step. README "Known defect": a garbage collection that falls inside a step can
     * corrupt that step's gradients (runs under Epsilon GC are bit-identical); collecting between steps makes one
     * inside a step unlikely, so the cross-run comparisons below test resuming and seeding, not that defect.
     */
    private static final TrainingListener COLLECT_BETWEEN_STEPS = p -> System.gc();

    private List<DeltaTensor> deltas(long seed, String dir) {
        try (TrainingRun run = TrainingRun.open(TrainingOptions.builder(GGUF, DOLLY, busySpielAg(), tmp.resolve(dir))
                .steps(8).batch(4, 4).seqLen(128).lr(1e-2f).seed(seed).evalExamples(8).build())) {
            run.trainUntil(8, COLLECT_BETWEEN_STEPS);
            return run.method().exportDeltas();
        }
    }

    @Test
    void theSameSeedGivesIdenticalDeltasAndAnotherSeedDoesNot() {
        List<DeltaTensor> a = deltas(3, "a");
        List<DeltaTensor> b = deltas(3, "b");
        List<DeltaTensor> c = deltas(4, "c");
        assertSameRun(a, b);
        assertFalse(java.util.Arrays.equals(a.get(0).indices(), c.get(0).indices()));
    }

    /**
     * Two runs of one seed end with the same deltas: bit for bit in almost every execution, but two executions of a
     * step can differ (README "Known defect": a garbage collection inside a step; BLAS last bits) and flip one
     * drop/grow choice, after which the runs take different paths. So:
     * bitwise, or at least 80 % of the slots shared and the deltas within 30 % of each other (relative L2). A run
     * that ignored its seed or lost its restored state differs in most slots and fails.
     */
    static void assertSameRun(List<DeltaTensor> a, List<DeltaTensor> b) {
        assertEquals(a.stream().map(DeltaTensor::module).toList(), b.stream().map(DeltaTensor::module).toList());
        long slots = 0;
        long shared = 0;
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < a.size(); i++) {
            java.util.Map<Long, Float> other = new java.util.HashMap<>();
            long[] idx = b.get(i).indices();
            float[] val = b.get(i).values();
            for (int j = 0; j < idx.length; j++) {
                other.put(idx[j], val[j]);
            }
            long[] refIdx = a.get(i).indices();
            float[] refVal = a.get(i).values();
            slots += refIdx.length;
            for (int j = 0; j < refIdx.length; j++) {
                Float v = other.remove(refIdx[j]);
                shared += v == null ? 0 : 1;
                double d = refVal[j] - (v == null ? 0 : v);
                diff += d * d;
                norm += (double) refVal[j] * refVal[j];
            }
            for (float v : other.values()) {
                diff += (double) v * v;
            }
        }
        assertTrue(norm > 0, "the run trained something");
        assertTrue(shared >= 0.8 * slots, shared + " of " + slots + " slots shared");
        assertTrue(Math.sqrt(diff) <= 0.3 * Math.sqrt(norm), "relative L2 distance " + Math.sqrt(diff / norm));
    }


    @Test
    void aRunResumedFromItsSavedStateEndsWhereTheUninterruptedRunEnds() {
        TrainingOptions.Builder options = TrainingOptions.builder(GGUF, DOLLY, busySpielAg(), tmp.resolve("resume"))
                .steps(10).batch(4, 2).seqLen(128).lr(1e-2f).seed(5).evalExamples(8);
        List<DeltaTensor> straight;
        try (TrainingRun run = TrainingRun.open(options.build())) {
            run.trainUntil(10, COLLECT_BETWEEN_STEPS);
            straight = run.method().exportDeltas();
        }
        try (TrainingRun run = TrainingRun.open(options.build())) {
            run.trainUntil(5, COLLECT_BETWEEN_STEPS); // inside the selection phase before the step-6 reselection
            run.save();
        }
        try (TrainingRun run = TrainingRun.open(options.build())) {
            run.resume(ResumeState.load(tmp.resolve("resume").resolve(TrainingRun.STATE_FILE)));
            List<Integer> steps = new ArrayList<>();
            run.trainUntil(10, p -> {
                steps.add(p.step());
                COLLECT_BETWEEN_STEPS.onStep(p);
            });
            assertEquals(List.of(6, 7, 8, 9, 10), steps);
            assertSameRun(straight, run.method().exportDeltas());
        }
    }

    @Test
    void missingFilesAndTooLittleDataAreNamed() throws Exception {
        Path missing = tmp.resolve("missing.jsonl");
        String m = assertThrows(IllegalArgumentException.class, () -> TrainingRun.open(
                TrainingOptions.builder(GGUF, missing, TrainingOptions.methodSpec("lora", null, 4, 0f), tmp).build()))
                .getMessage();
        assertTrue(m.contains(missing.toString()), m);
        Path two = tmp.resolve("two.jsonl");
        Files.writeString(two, "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"c\", \"response\": \"d\"}\n");
        m = assertThrows(IllegalArgumentException.class, () -> TrainingRun.open(TrainingOptions.builder(GGUF, two,
                TrainingOptions.methodSpec("lora", null, 4, 0f), tmp).evalExamples(2).build())).getMessage();
        assertTrue(m.contains(two.toString()) && m.contains("2 usable examples"), m);
    }

    private static List<String> iterable(java.util.Iterator<String> it) {
        List<String> out = new ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }
}
