package dev.spiel4j.service;

import dev.spiel4j.checkpoint.SftImport;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.config.RunSettings;
import dev.spiel4j.data.ExampleEncoder;
import dev.spiel4j.data.ExampleFileReader;
import dev.spiel4j.data.ExampleParser;
import dev.spiel4j.data.RawRecord;
import dev.spiel4j.data.ReadPosition;
import dev.spiel4j.data.ShuffledSampler;
import dev.spiel4j.data.RecordDecoder;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.registry.MethodRegistry;
import dev.spiel4j.peft.registry.MethodSettings;
import dev.spiel4j.peft.sft.DropGrowSchedule;
import dev.spiel4j.streams.BatchShape;
import dev.spiel4j.train.LrSchedule;
import dev.spiel4j.train.ModelPlacement;
import dev.spiel4j.train.BackwardPass;
import dev.spiel4j.train.SessionSpec;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What a run's settings mean once the model is loaded: the method's config, the number of steps, the learning-rate
 * schedule, how examples are decoded and encoded, and which records of the training file are trained on and which
 * are held out for evaluation. Shared read-only by the actors of a run.
 *
 * @param settings     the run's settings
 * @param model        the base model on the host (each actor builds its own engine copy from it)
 * @param method       the fine-tuning method's config
 * @param totalSteps   optimizer steps of the run; {@link Integer#MAX_VALUE} when unbounded (continual)
 * @param encoder      tokenizes examples to at most {@code data.seq-len} tokens
 * @param decoder      parses a record of the training source
 * @param shape        batch size and row length
 * @param trainRecords records of the training file that are trained on (the rest is held out); unused for Kafka
 * @param holdout      where the held-out records of the training file start, when evaluation uses them
 * @param start        the deltas a SpIEL run starts from instead of random indices ({@code train.init-from})
 * @param recordStarts where each trained record of the training file starts, when {@code data.shuffle} reads them in
 *                     seeded orders; empty otherwise
 */
record RunPlan(RunSettings settings, LoadedModel model, MethodConfig method, int totalSteps,
               ExampleEncoder encoder, RecordDecoder decoder, BatchShape shape, long trainRecords,
               Optional<ReadPosition> holdout, Optional<SparseFineTuning> start,
               List<ReadPosition> recordStarts) {

    /** Block linears by the short names the configuration uses. */
    private static final Map<String, String> TARGETS = Map.of("q", "self_attn.q_proj", "k", "self_attn.k_proj",
            "v", "self_attn.v_proj", "o", "self_attn.o_proj", "gate", "mlp.gate_proj", "up", "mlp.up_proj",
            "down", "mlp.down_proj");

    /** Whether the training file is read in a seeded order per epoch ({@code data.shuffle}). */
    public boolean shuffled() {
        return !recordStarts.isEmpty();
    }

    /**
     * The order in which epoch {@code epoch} reads the trained records (indices into {@link #recordStarts}): a
     * permutation seeded by {@code run.seed} and the epoch, the same in every process that resumes the run.
     */
    public int[] recordOrder(long epoch) {
        return new ShuffledSampler<>(recordStarts, settings.run().seed()).order(epoch);
    }

    /** Whether the run goes on until it is stopped. */
    public boolean unbounded() {
        return totalSteps == Integer.MAX_VALUE;
    }

    /**
     * How each actor of the run that needs the model (trainer, evaluator) uploads its copy: on the {@code device},
     * in {@code model.compute-type}, the block linears stored as {@code model.quantize} says.
     *
     * @throws IllegalArgumentException when the device setting names a GPU the engine does not have
     */
    public ModelPlacement placement() {
        return placement(settings);
    }

    /** {@link #placement()} of a run with {@code settings}. */
    static ModelPlacement placement(RunSettings settings) {
        return new ModelPlacement(settings.device().resolve("device"),
                ModelPlacement.computeType(settings.model().computeType()),
                ModelPlacement.storage(settings.model().quantize()));
    }

    /**
     * The trainer's session: the method over the run's steps, clipped at {@code optimizer.grad-clip} (0: never),
     * with activation checkpointing as {@code train.activation-checkpointing} says.
     */
    public SessionSpec trainingSpec() {
        return trainingSpec(settings, method, totalSteps);
    }

    /** {@link #trainingSpec()} of a run with {@code settings}, {@code method} and {@code totalSteps}. */
    static SessionSpec trainingSpec(RunSettings settings, MethodConfig method, int totalSteps) {
        double clip = settings.optimizer().gradClip();
        return new SessionSpec(method, totalSteps, clip > 0 ? (float) clip : Float.POSITIVE_INFINITY,
                settings.train().activationCheckpointing() ? BackwardPass.CHECKPOINTED : BackwardPass.BLOCK_WISE);
    }

    public static RunPlan of(RunSettings s, LoadedModel model) {
        ExampleEncoder encoder = new ExampleEncoder(model.tokenizer(), s.data().seqLen(),
                s.data().truncate() ? ExampleEncoder.Overflow.TRUNCATE : ExampleEncoder.Overflow.REJECT);
        BatchShape shape = new BatchShape(s.batch().size(), s.data().seqLen() - 1);
        long trainRecords = Long.MAX_VALUE;
        Optional<ReadPosition> holdout = Optional.empty();
        List<ReadPosition> shuffledStarts = List.of();
        RecordDecoder decoder = ExampleParser.JSON;
        if (s.data().source() == RunSettings.Source.FILE) {
            Path train = s.data().train();
            if (!Files.isRegularFile(train)) {
                throw new IllegalArgumentException("data.train: " + train.toAbsolutePath() + " is not a file");
            }
            decoder = s.data().format().equals("text") ? ExampleParser.TEXT
                    : ExampleFileReader.Format.of(train).decoder();
            boolean holdOut = s.eval().interval() > 0 && s.eval().data().isEmpty() && s.eval().holdoutExamples() > 0;
            if (holdOut || s.schedule().epochs() > 0 || s.data().shuffle()) {
                List<ReadPosition> starts = recordStarts(train);
                int held = holdOut ? s.eval().holdoutExamples() : 0;
                if (starts.size() <= held) {
                    throw new IllegalArgumentException("data.train: " + train + " has " + starts.size()
                            + " records; training needs more than the " + held + " held out (eval.holdout-examples)");
                }
                trainRecords = starts.size() - held;
                if (holdOut) {
                    holdout = Optional.of(starts.get((int) trainRecords));
                }
                if (s.data().shuffle()) {
                    shuffledStarts = List.copyOf(starts.subList(0, (int) trainRecords));
                }
            }
        }
        int total = totalSteps(s, trainRecords);
        // read and checked against the base before the run starts, so that a file that does not fit is refused once
        Optional<SparseFineTuning> start = s.train().initFrom().map(p -> SftImport.readFor(checkpointDelta(p), model));
        return new RunPlan(s, model, methodConfig(s), total, encoder, decoder, shape, trainRecords, holdout, start,
                shuffledStarts);
    }

    /** The learning rate at each step: linear warm-up, then the configured decay (constant when unbounded). */
    public LrSchedule learningRate() {
        float peak = (float) settings.optimizer().lr();
        int warmup = unbounded() ? 0 : (int) Math.ceil(settings.schedule().warmupFraction() * totalSteps);
        String decay = unbounded() ? "constant" : settings.schedule().decay();
        return switch (decay) {
            case "linear" -> LrSchedule.warmupLinearDecay(peak, warmup, totalSteps);
            case "cosine" -> t -> t <= warmup ? peak * t / warmup
                    : (float) (peak / 2 * (1 + Math.cos(Math.PI * (t - warmup) / (totalSteps - warmup + 1.0))));
            default -> t -> t <= warmup ? peak * t / warmup : peak;
        };
    }

    private static int totalSteps(RunSettings s, long trainRecords) {
        if (s.schedule().epochs() > 0 && s.data().source() == RunSettings.Source.FILE) {
            long perStep = (long) s.batch().size() * s.batch().microBatches();
            long steps = (s.schedule().epochs() * trainRecords + perStep - 1) / perStep;
            return (int) Math.min(steps, Integer.MAX_VALUE - 1);
        }
        long steps = s.schedule().steps();
        if (steps >= Integer.MAX_VALUE) {
            throw new IllegalArgumentException("schedule.steps = " + steps + " is too large (max "
                    + (Integer.MAX_VALUE - 1) + ")");
        }
        return steps == 0 ? Integer.MAX_VALUE : (int) steps;
    }

    /** The method's config, built by its registration from the run's settings. */
    static MethodConfig methodConfig(RunSettings s) {
        RunSettings.Method m = s.method();
        RunSettings.Budget b = m.budget();
        Budget budget = b.density() > 0 ? new Budget.Density(b.density())
                : b.numDeltas() > 0 ? new Budget.Count(b.numDeltas())
                : b.matchLoraRank() > 0 ? new Budget.MatchLoraRank(b.matchLoraRank()) : null;
        RunSettings.Optimizer o = s.optimizer();
        return MethodRegistry.config(m.name(), new MethodSettings(Optional.ofNullable(budget),
                m.targets().stream().map(TARGETS::get).toList(), m.lora().rank(), (float) m.lora().alpha(),
                (float) m.lora().dropout(), m.reselectionInterval(), m.selectionSteps(), m.replaceFraction(),
                DropGrowSchedule.Kind.valueOf(m.replaceSchedule().toUpperCase()),
                new OptimizerSettings((float) o.weightDecay(), (float) o.beta1(), (float) o.beta2(), (float) o.eps()),
                s.run().seed()));
    }

    /** A checkpoint directory stands for its delta file; anything else for itself. */
    private static Path checkpointDelta(Path path) {
        Path delta = path.resolve(CheckpointStore.DELTA_FILE);
        return Files.isDirectory(path) && Files.isRegularFile(delta) ? delta : path;
    }

    /** The position of every record of an example file, in order. */
    private static List<ReadPosition> recordStarts(Path file) {
        try (ExampleFileReader reader = ExampleFileReader.open(file)) {
            List<ReadPosition> starts = new java.util.ArrayList<>();
            while (reader.hasNext()) {
                RawRecord<ReadPosition> r = reader.next();
                starts.add(r.at());
            }
            return starts;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read data.train " + file + ": " + e.getMessage(), e);
        }
    }
}
