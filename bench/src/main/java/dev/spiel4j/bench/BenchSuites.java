package dev.spiel4j.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import dev.spiel4j.peft.registry.MethodRegistry;

/**
 * The suites of {@code ./spiel4j bench}: which configurations, sweeps and bisections each runs. The real model
 * (stories260K, GGUF for spiel4j, the HF checkpoint for the peer) trains on instruction batches the caller
 * prepares with the engine's data pipeline; random shapes train on seeded synthetic tokens (their loss carries
 * no meaning, their speed and memory do). Every per-method configuration runs without and with activation
 * checkpointing, the Python peer beside each LoRA and full configuration in the same setting. Step counts and
 * learning rates are starting points to tune once the engine runs.
 */
public final class BenchSuites {
    /** Every registered method, in registration order. */
    static final List<String> METHODS = MethodRegistry.names();
    /** Methods compared on the large random shape (full fine-tuning's optimizer state alone is 8 bytes/weight). */
    static final List<String> LARGE_METHODS = List.of("lora", "spiel-ag", "spiel-ma");
    static final int RANK = 8;
    /**
     * Every per-method configuration runs in both settings, without and with activation checkpointing; the
     * sweeps and the minimum-memory bisections run without.
     */
    static final List<Boolean> ACTIVATION_CHECKPOINTING = List.of(false, true);
    /** The quick suite's largest shape, whose rows the report's targets table reads (the full suite has it too). */
    static final String TARGET_MODEL = "llama-100M";
    /** Per-method learning rates for the short runs of the suites (tiny model, few steps). */
    static final Map<String, Double> LR = Map.of("full", 1e-3, "lora", 2e-3, "ia3", 3e-3, "spiel-ag", 2e-3,
            "spiel-ma", 1e-2);

    /** stories260K's shape, for budgets (its weights come from the files). */
    static final BenchSpec.RandomShape STORIES260K = new BenchSpec.RandomShape(64, 5, 8, 4, 172, 512, 512, 1e-5,
            1e4, true, 0);

    /**
     * @param gguf               stories260K.gguf
     * @param hfDir              stories260K-hf (the same weights, for the peer)
     * @param instructionBatches a {@link BatchFile} of real instruction data tokenized for stories260K
     * @param workDir            where synthetic batch files go
     * @param threads            intra-op threads for every run
     */
    public record Inputs(Path gguf, Path hfDir, Path instructionBatches, Path workDir, int threads) {
    }

    private BenchSuites() {
    }

    /** A randomly initialised LLaMA of about 100M parameters (106M: 768 wide, 8 blocks, 32k vocabulary). */
    static BenchSpec.RandomShape llama100M(long seed) {
        return new BenchSpec.RandomShape(768, 8, 12, 12, 2048, 32000, 2048, 1e-5, 1e4, false, seed);
    }

    /**
     * A randomly initialised LLaMA of about 350M parameters (348M: 1024 wide, 22 blocks, 32k vocabulary, untied),
     * the full suite's largest shape.
     */
    static BenchSpec.RandomShape llama350M(long seed) {
        return new BenchSpec.RandomShape(1024, 22, 16, 16, 2816, 32000, 2048, 1e-5, 1e4, false, seed);
    }

    /** The random shapes by the names the bench's rows give them (seed 1, as the suites use them). */
    static final Map<String, BenchSpec.RandomShape> RANDOM_SHAPES = Map.of(TARGET_MODEL, llama100M(1),
            "llama-350M", llama350M(1));

    /**
     * The quick suite: finishes in minutes on a 2-core machine. The large shape's methods run on a float32 base and
     * on an NF4 one (qLoRA, qSpIEL-AG, qSpIEL-MA), as the paper's Table 3 does.
     */
    public static BenchPlan quick(Inputs in, String command) {
        return plan("quick", command, in, 40, 3, 8, List.of("fp32", "nf4"), 4, 0);
    }

    /** The full suite: more steps, larger sweeps, bf16 as well, and the ~350M shape. */
    public static BenchPlan full(Inputs in, String command) {
        return plan("full", command, in, 60, 5, 20, List.of("fp32", "bf16", "nf4"), 8, 10);
    }

    /**
     * @param largestSteps measured steps on the ~350M shape; 0 leaves it out
     */
    private static BenchPlan plan(String suite, String command, Inputs in, int steps, int warmup, int largeSteps,
                                  List<String> dtypes, int sweepPoints, int largestSteps) {
        BenchSpec.Model stories = new BenchSpec.Model("stories260K", in.gguf().toString(), in.hfDir().toString(), null);
        String real = in.instructionBatches().toString();
        List<BenchSpec> configs = new ArrayList<>();
        for (boolean checkpointing : ACTIVATION_CHECKPOINTING) {
            for (String method : METHODS) {
                configs.add(spec(stories, method, STORIES260K.loraParameters(RANK), RANK, "fp32", in.threads(), steps,
                        warmup, real).withActivationCheckpointing(checkpointing));
            }
        }
        BenchSpec.RandomShape big = llama100M(1);
        // The rows the targets are read from train on 512-token sequences, the sweeps (3 steps each) on 128-token
        // ones. At 128 tokens a step's activations are smaller than the trained parameters' own state, which no
        // fine-tuning run of a real model sees.
        String sequences = synthetic(in, "synthetic-32k-512.json", big.vocabSize(), 512);
        String synthetic = synthetic(in, "synthetic-32k.json", big.vocabSize(), 128);
        BenchSpec.Model bigModel = new BenchSpec.Model(TARGET_MODEL, null, null, big);
        for (boolean checkpointing : ACTIVATION_CHECKPOINTING) {
            for (String dtype : dtypes) {
                for (String method : LARGE_METHODS) {
                    configs.add(spec(bigModel, method, big.loraParameters(RANK), RANK, dtype, in.threads(), largeSteps,
                            1, sequences).withActivationCheckpointing(checkpointing));
                }
            }
        }
        if (largestSteps > 0) {
            BenchSpec.RandomShape largest = llama350M(1);
            BenchSpec.Model largestModel = new BenchSpec.Model("llama-350M", null, null, largest);
            for (boolean checkpointing : ACTIVATION_CHECKPOINTING) {
                for (String method : LARGE_METHODS) {
                    configs.add(spec(largestModel, method, largest.loraParameters(RANK), RANK, "fp32", in.threads(),
                            largestSteps, 1, sequences).withActivationCheckpointing(checkpointing));
                }
            }
        }

        // memory overhead against the delta count on the large shape: must grow linearly
        List<BenchSpec> density = new ArrayList<>();
        List<String> densityLabels = new ArrayList<>();
        double[] deltas = new double[sweepPoints];
        for (int i = 0; i < sweepPoints; i++) {
            int rank = 2 << i;
            long d = big.loraParameters(rank);
            deltas[i] = d;
            densityLabels.add("rank-equivalent " + rank);
            density.add(spec(bigModel, "spiel-ag", d, rank, "fp32", in.threads(), 3, 1, synthetic));
        }
        // memory overhead across model sizes at one delta count: must stay flat
        long fixedDeltas = 200_000;
        List<BenchSpec> sizes = new ArrayList<>();
        List<BenchSpec> frozen = new ArrayList<>();
        List<String> sizeLabels = new ArrayList<>();
        int[] widths = {256, 384, 512, 640, 768, 1024, 1280, 1536};
        double[] params = new double[Math.min(sweepPoints, widths.length)];
        for (int i = 0; i < params.length; i++) {
            int w = widths[i];
            BenchSpec.RandomShape shape = new BenchSpec.RandomShape(w, 8, w / 64, w / 64, w * 8 / 3 / 64 * 64, 32000,
                    2048, 1e-5, 1e4, false, 1);
            params[i] = shape.parameters();
            sizeLabels.add("dim " + w);
            BenchSpec.Model model = new BenchSpec.Model("llama-dim" + w, null, null, shape);
            sizes.add(spec(model, "spiel-ag", fixedDeltas, RANK, "fp32", in.threads(), 3, 1, synthetic));
            // (IA)3 trains 3 vectors per block: its overhead is the frozen model's own activations at this width
            frozen.add(spec(model, "ia3", fixedDeltas, RANK, "fp32", in.threads(), 3, 1, synthetic));
        }
        List<BenchPlan.Sweep> sweeps = List.of(
                new BenchPlan.Sweep("overhead vs deltas (llama-100M, spiel-ag)", "deltas", densityLabels, density, deltas),
                new BenchPlan.Sweep("overhead vs model size (" + fixedDeltas + " deltas, spiel-ag)", "parameters",
                        sizeLabels, sizes, params),
                new BenchPlan.Sweep("overhead above (IA)3 vs model size (" + fixedDeltas + " deltas, spiel-ag)",
                        "parameters", sizeLabels, sizes, params, frozen));

        List<BenchSpec> minimum = new ArrayList<>();
        for (String method : METHODS) {
            minimum.add(spec(stories, method, STORIES260K.loraParameters(RANK), RANK, "fp32", in.threads(), 10, 0, real));
        }
        return new BenchPlan(suite, command, TARGET_MODEL, configs, sweeps, minimum);
    }

    private static BenchSpec spec(BenchSpec.Model model, String method, long deltas, int rank, String dtype,
                                  int threads, int steps, int warmup, String batches) {
        Double lr = LR.get(method);
        if (lr == null) {
            throw new IllegalStateException("the suites have no learning rate for method '" + method + "' (BenchSuites.LR)");
        }
        return new BenchSpec("engine", model, method, new BenchSpec.Budget(rank, 2.0 * rank, 0, deltas), dtype, threads,
                steps, warmup, lr, 0, 42, batches, false);
    }

    private static String synthetic(Inputs in, String name, int vocab, int seqLen) {
        Path f = in.workDir().resolve(name);
        BatchFile.synthetic(7, 4, 1, 1, seqLen, vocab).write(f);
        return f.toString();
    }
}
