package dev.spiel4j.train;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.data.Batch;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.ShufflePosition;
import dev.spiel4j.data.ShuffledSampler;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.LoadedModel;
import dev.spiel4j.io.ModelLoader;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodSpec;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The engine's plain training loop (the {@code train} command and the benchmarks' real-data runs): loads the model
 * and the data, measures the eval loss, runs {@link TrainingOptions#steps()} {@link Trainer} steps on seeded
 * shuffled batches with warm-up + linear decay, measures the eval loss again and writes to the out dir:
 * <ul>
 *   <li>{@value #SPARSE_FILE}: the {@link SparseFineTuning} (base fingerprint, method, hyperparameters) for the
 *       sparse methods, or {@value #ADAPTER_FILE}: the method's tensors ({@link FineTuningMethod#exportTensors})
 *       with the same metadata for LoRA, (IA)3 and full fine-tuning;</li>
 *   <li>{@value #STATE_FILE}: the {@link ResumeState} (optimizer and selector state, data position);</li>
 *   <li>{@value #RESULT_FILE}: the {@link TrainingResult} as JSON.</li>
 * </ul>
 * {@link #open} loads everything, so callers (tests) can look at the model and the method before and after
 * {@link #run}. Not thread-safe.
 */
public final class TrainingRun implements AutoCloseable {
    public static final String SPARSE_FILE = "sft.safetensors";
    public static final String ADAPTER_FILE = "adapter.safetensors";
    public static final String STATE_FILE = "training-state.safetensors";
    public static final String RESULT_FILE = "result.json";

    private final TrainingOptions options;
    private final LoadedModel loaded;
    private final TrainingData data;
    private final NDManager root;
    private final LlamaModel model;
    private final FineTuningMethod method;
    private Trainer trainer;
    private final ShuffledSampler<TokenizedExample> sampler;
    private ShufflePosition position = ShufflePosition.START;

    private TrainingRun(TrainingOptions options, LoadedModel loaded, TrainingData data, NDManager root,
                        LlamaModel model, FineTuningMethod method) {
        this.options = options;
        this.loaded = loaded;
        this.data = data;
        this.root = root;
        this.model = model;
        this.method = method;
        this.trainer = new Trainer(model, method, options.maxGradNorm());
        this.sampler = new ShuffledSampler<>(data.train(), options.seed());
    }

    /**
     * Loads the model and the data and creates the method. Files are checked first, so a missing data file fails
     * before the model is loaded.
     */
    public static TrainingRun open(TrainingOptions options) {
        for (Path p : options.evalData() == null ? List.of(options.data()) : List.of(options.data(), options.evalData())) {
            if (!Files.isRegularFile(p)) {
                throw new IllegalArgumentException("data file " + p + " does not exist or is not a file");
            }
        }
        LoadedModel loaded = ModelLoader.load(options.model());
        TrainingData data = TrainingData.load(options.data(), options.evalData(), loaded.tokenizer(), options.seqLen(),
                options.evalExamples());
        NDManager root = NDManager.newBaseManager();
        LlamaModel model = null;
        try {
            model = LlamaModel.create(loaded, root, DataType.FLOAT32);
            return new TrainingRun(options, loaded, data, root, model, options.method().create(model, options.steps()));
        } catch (RuntimeException e) {
            if (model != null) {
                model.close();
            }
            root.close();
            throw e;
        }
    }

    public TrainingOptions options() {
        return options;
    }

    public LoadedModel loaded() {
        return loaded;
    }

    public TrainingData data() {
        return data;
    }

    public LlamaModel model() {
        return model;
    }

    public FineTuningMethod method() {
        return method;
    }

    /** Where the data order stands (the next batch starts here). */
    public ShufflePosition position() {
        return position;
    }

    /**
     * Continues a run from a saved {@link ResumeState} (of a run with the same options): the method's values and
     * optimizer/selector state, the step count and the data position. Call before {@link #run}.
     */
    public void resume(ResumeState state) {
        if (trainer.completedSteps() != 0) {
            throw new IllegalStateException("resume before training, not after " + trainer.completedSteps() + " steps");
        }
        if (state.method().step() >= options.steps()) {
            throw new IllegalArgumentException("the saved state is at step " + state.method().step()
                    + ", nothing is left of a " + options.steps() + "-step run");
        }
        method.restore(state.method());
        trainer = new Trainer(model, method, options.maxGradNorm(), state.method().step());
        position = state.data();
    }

    /** Mean eval loss with the method's current values. */
    public double evalLoss() {
        return trainer.evaluate(data.evalBatches(options.microBatchSize()));
    }

    /** The next step's micro-batches; advances the data position. */
    private List<Batch> nextStep() {
        ShuffledSampler.Draw<TokenizedExample> draw = sampler.draw(position, options.batchSize());
        position = draw.next();
        List<Batch> micro = new ArrayList<>();
        for (int i = 0; i < options.batchSize(); i += options.microBatchSize()) {
            micro.add(Batches.pad(draw.items().subList(i, i + options.microBatchSize()), 0));
        }
        return micro;
    }

    /**
     * The whole run: eval loss, the remaining steps (all of them, or those after a {@link #resume}), eval loss,
     * then writes the out dir (see {@link #save}) and {@value #RESULT_FILE}.
     */
    public TrainingResult run(TrainingListener listener) {
        double before = evalLoss();
        List<StepResult> steps = trainUntil(options.steps(), listener);
        double after = evalLoss();
        Path checkpoint = save();
        double peakMb = ProcMemory.selfStatusBytes("VmHWM").stream().mapToDouble(b -> b / (1024.0 * 1024)).findFirst()
                .orElse(Double.NaN);
        TrainingResult result = new TrainingResult(method.name(), method.trainableParameters(), options.steps(), before,
                after, median(steps.stream().mapToDouble(StepResult::seconds).toArray()), peakMb, checkpoint);
        write(options.outDir().resolve(RESULT_FILE), result.toJson().toPrettyString());
        return result;
    }

    /** Runs the steps after the last completed one up to and including {@code lastStep}. */
    public List<StepResult> trainUntil(int lastStep, TrainingListener listener) {
        if (lastStep < trainer.completedSteps() || lastStep > options.steps()) {
            throw new IllegalArgumentException("cannot train until step " + lastStep + ": " + trainer.completedSteps()
                    + " of " + options.steps() + " steps are done");
        }
        LrSchedule schedule = options.schedule();
        int first = trainer.completedSteps() + 1;
        List<StepResult> results = new ArrayList<>();
        long tokens = 0;
        double elapsed = 0;
        for (int t = first; t <= lastStep; t++) {
            List<Batch> micro = nextStep();
            float lr = schedule.at(t);
            StepResult r = trainer.step(micro, lr);
            results.add(r);
            elapsed += r.seconds();
            for (Batch b : micro) {
                tokens += realTokens(b);
            }
            listener.onStep(new TrainingListener.Progress(t, options.steps(), r.loss(), lr, r.gradNorm(),
                    tokens / elapsed, elapsed / results.size() * (options.steps() - t), r.reselected()));
        }
        return results;
    }

    private static long realTokens(Batch b) {
        long n = 0;
        for (float m : b.attentionMask()) {
            n += m > 0 ? 1 : 0;
        }
        return n;
    }

    static double median(double[] values) {
        if (values.length == 0) {
            return Double.NaN;
        }
        double[] s = values.clone();
        Arrays.sort(s);
        int m = s.length / 2;
        return s.length % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2;
    }

    /** Writes the fine-tuning (or adapter) and the resume state; returns the fine-tuning's file. */
    public Path save() {
        Path dir = options.outDir();
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the output directory " + dir, e);
        }
        Map<String, String> hp = hyperparameters();
        Path file;
        List<DeltaTensor> deltas = method.exportDeltas();
        if (!deltas.isEmpty()) {
            file = dir.resolve(SPARSE_FILE);
            new SparseFineTuning(loaded.fingerprint(), method.name(), hp, deltas).save(file);
        } else {
            file = dir.resolve(ADAPTER_FILE);
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("method", method.name());
            meta.put("base_fingerprint", loaded.fingerprint());
            meta.put("hyperparameters", JsonFiles.MAPPER.valueToTree(hp).toString());
            SafeTensors.write(file, method.exportTensors().values(), meta);
        }
        new ResumeState(method.state(), position).save(dir.resolve(STATE_FILE));
        return file;
    }

    /** The settings worth recording with the fine-tuning. */
    private Map<String, String> hyperparameters() {
        MethodSpec m = options.method();
        Map<String, String> hp = new LinkedHashMap<>();
        hp.put("method", m.method().cliName());
        hp.put("trainable_params", Long.toString(method.trainableParameters()));
        if (m.method() == MethodSpec.Method.SPIEL_AG || m.method() == MethodSpec.Method.SPIEL_MA) {
            hp.put("budget", m.budget().toString());
            hp.put("reselection_interval", Integer.toString(m.interval()));
            hp.put("selection_phase", Integer.toString(m.phase()));
            hp.put("replacement_rate", Double.toString(m.peakRate()));
            hp.put("replacement_schedule", m.scheduleKind().name().toLowerCase(Locale.ROOT));
        }
        if (m.method() == MethodSpec.Method.LORA) {
            hp.put("lora_rank", Integer.toString(m.loraRank()));
            hp.put("lora_alpha", Float.toString(m.loraAlpha()));
            hp.put("lora_dropout", Float.toString(m.loraDropout()));
        }
        hp.put("targets", String.join(",", m.targets()));
        hp.put("weight_decay", Float.toString(m.weightDecay()));
        hp.put("lr", Float.toString(options.lr()));
        hp.put("warmup_fraction", Double.toString(options.warmupFraction()));
        hp.put("max_grad_norm", Float.toString(options.maxGradNorm()));
        hp.put("steps", Integer.toString(options.steps()));
        hp.put("batch_size", Integer.toString(options.batchSize()));
        hp.put("micro_batch_size", Integer.toString(options.microBatchSize()));
        hp.put("seq_len", Integer.toString(options.seqLen()));
        hp.put("seed", Long.toString(options.seed()));
        hp.put("data", options.data().getFileName().toString());
        return hp;
    }

    private static void write(Path file, String text) {
        try {
            Files.writeString(file, text + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    @Override
    public void close() {
        method.close();
        model.close();
        root.close();
    }
}
