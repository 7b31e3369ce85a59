package dev.spiel4j.train;

import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.MethodSpec;

import java.nio.file.Path;
import java.util.Objects;

/**
 * Everything a plain {@link TrainingRun} needs. Build one with {@link #builder}; the defaults are a short run that
 * suits stories260K.
 *
 * @param model          a GGUF file or a Hugging Face checkpoint directory
 * @param data           training examples (any format {@link dev.spiel4j.data.ExampleFileReader} reads)
 * @param evalData       eval examples, or null to hold out the last {@code evalExamples} examples of {@code data}
 * @param method         the fine-tuning method with its budget, rank and weight decay; its seed is replaced by
 *                       {@code seed}, so that one seed fixes the whole run
 * @param steps          optimizer steps
 * @param batchSize      examples per optimizer step
 * @param microBatchSize examples per forward/backward pass (gradient accumulation over batchSize / microBatchSize)
 * @param seqLen         positions per row; longer examples lose the start of their prompt
 * @param lr             peak learning rate
 * @param warmupFraction fraction of the steps with a linear warm-up, then linear decay
 * @param maxGradNorm    global gradient-norm clipping ({@code Float.POSITIVE_INFINITY} disables it)
 * @param seed           seed of the data order and of the method (initial indices, LoRA init, dropout)
 * @param evalExamples   at most this many eval examples
 * @param outDir         where the fine-tuning, the training state and {@code result.json} are written
 */
public record TrainingOptions(Path model, Path data, Path evalData, MethodSpec method, int steps, int batchSize,
                              int microBatchSize, int seqLen, float lr, double warmupFraction, float maxGradNorm,
                              long seed, int evalExamples, Path outDir) {

    public TrainingOptions {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(data, "data");
        Objects.requireNonNull(outDir, "outDir");
        method = Objects.requireNonNull(method, "method").withSeed(seed);
        require(steps >= 1, "steps must be >= 1, got " + steps);
        require(batchSize >= 1, "batch size must be >= 1, got " + batchSize);
        require(microBatchSize >= 1 && batchSize % microBatchSize == 0,
                "micro-batch size must divide the batch size " + batchSize + ", got " + microBatchSize);
        require(seqLen >= 2, "sequence length must be >= 2, got " + seqLen);
        require(lr > 0 && Float.isFinite(lr), "learning rate must be positive, got " + lr);
        require(warmupFraction >= 0 && warmupFraction < 1, "warm-up fraction must be in [0, 1), got " + warmupFraction);
        require(maxGradNorm > 0, "max gradient norm must be positive, got " + maxGradNorm);
        require(evalExamples >= 1, "eval examples must be >= 1, got " + evalExamples);
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /** Learning-rate schedule of the run: warm-up over {@code warmupFraction} of the steps, then linear decay. */
    public LrSchedule schedule() {
        return LrSchedule.warmupFractionLinearDecay(lr, warmupFraction, steps);
    }

    /**
     * The method spec for a command-line style choice: {@code method} by its name, a sparse {@code budget} (null
     * for the dense methods; null for a sparse method means "as many deltas as LoRA of rank {@code rank}"), LoRA
     * of rank {@code rank} with alpha {@code 2 * rank} and no dropout, and decoupled weight decay.
     */
    public static MethodSpec methodSpec(String method, Budget budget, int rank, float weightDecay) {
        if (rank < 1) {
            throw new IllegalArgumentException("rank must be >= 1, got " + rank);
        }
        MethodSpec.Method m = MethodSpec.Method.parse(method);
        Budget sparse = budget != null ? budget : new Budget.MatchLoraRank(rank);
        MethodSpec spec = switch (m) {
            case SPIEL_AG -> MethodSpec.spielAg(sparse);
            case SPIEL_MA -> MethodSpec.spielMa(sparse);
            case LORA -> MethodSpec.lora(rank, 2f * rank, 0f);
            case IA3 -> MethodSpec.ia3();
            case FULL -> MethodSpec.full();
        };
        return spec.withWeightDecay(weightDecay);
    }

    public static Builder builder(Path model, Path data, MethodSpec method, Path outDir) {
        return new Builder(model, data, method, outDir);
    }

    /** Options with defaults; each setter returns the builder. */
    public static final class Builder {
        private final Path model;
        private final Path data;
        private final MethodSpec method;
        private final Path outDir;
        private Path evalData;
        private int steps = 100;
        private int batchSize = 8;
        private int microBatchSize = 8;
        private int seqLen = 256;
        private float lr = 2e-3f;
        private double warmupFraction = 0.03;
        private float maxGradNorm = 1f;
        private long seed = 0;
        private int evalExamples = 64;

        private Builder(Path model, Path data, MethodSpec method, Path outDir) {
            this.model = model;
            this.data = data;
            this.method = method;
            this.outDir = outDir;
        }

        public Builder evalData(Path file) {
            this.evalData = file;
            return this;
        }

        public Builder steps(int n) {
            this.steps = n;
            return this;
        }

        /** {@code batch} examples per step, processed {@code micro} at a time. */
        public Builder batch(int batch, int micro) {
            this.batchSize = batch;
            this.microBatchSize = micro;
            return this;
        }

        public Builder seqLen(int n) {
            this.seqLen = n;
            return this;
        }

        public Builder lr(float peak) {
            this.lr = peak;
            return this;
        }

        public Builder warmupFraction(double f) {
            this.warmupFraction = f;
            return this;
        }

        public Builder maxGradNorm(float norm) {
            this.maxGradNorm = norm;
            return this;
        }

        public Builder seed(long s) {
            this.seed = s;
            return this;
        }

        public Builder evalExamples(int n) {
            this.evalExamples = n;
            return this;
        }

        public TrainingOptions build() {
            return new TrainingOptions(model, data, evalData, method, steps, batchSize, microBatchSize, seqLen, lr,
                    warmupFraction, maxGradNorm, seed, evalExamples, outDir);
        }
    }
}
