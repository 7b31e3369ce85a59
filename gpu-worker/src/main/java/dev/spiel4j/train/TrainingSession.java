package dev.spiel4j.train;

import ai.djl.Device;
import dev.spiel4j.checkpoint.PeftAdapter;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.data.Batch;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.ia3.Ia3Config;
import dev.spiel4j.peft.lora.LoraConfig;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.peft.sft.SelectionRequest;
import dev.spiel4j.peft.sft.Reselection;
import dev.spiel4j.peft.sft.SpielMethod;

import java.util.List;
import java.util.Optional;

/**
 * One fine-tuning of one base model on one device: the {@link EngineModel}, the {@link FineTuningMethod} its
 * {@link SessionSpec} describes, and the {@link Trainer} that steps it. The training service's trainer and
 * evaluator and the benchmarks' engine workload all train and score through a session; whoever drives it owns the
 * data, the learning-rate schedule and where checkpoints go, and reads the method's {@link #state()} to save one.
 *
 * <p>Not thread-safe: one thread owns the session's tensors.
 */
public final class TrainingSession implements AutoCloseable {
    private final EngineModel base;
    private final SessionSpec spec;
    private final FineTuningMethod method;
    private Trainer trainer;
    private boolean closed;

    private TrainingSession(EngineModel base, SessionSpec spec, FineTuningMethod method) {
        this.base = base;
        this.spec = spec;
        this.method = method;
        this.trainer = new Trainer(base.model(), method, spec.maxGradNorm(), 0, spec.backward());
    }

    /** Uploads {@code loaded} as {@code placement} says and creates the method on it, at step 0. */
    public static TrainingSession open(LoadedModel loaded, ModelPlacement placement, SessionSpec spec) {
        return open(EngineModel.load(loaded, placement), spec);
    }

    /**
     * Creates the method on a model already uploaded (the benchmarks measure the base model alone first). The
     * session owns {@code base} from here on: it closes it, and so does this method when the method cannot be
     * created.
     */
    public static TrainingSession open(EngineModel base, SessionSpec spec) {
        try {
            return new TrainingSession(base, spec, spec.method().create(base.model(), spec.totalSteps()));
        } catch (RuntimeException e) {
            try {
                base.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /**
     * Puts the method back to a saved {@link #state()}: trainable values, optimizer and selector state, and the
     * steps completed, so the next {@link #step} continues that run exactly. Allowed between any two steps (the
     * evaluator loads each snapshot it scores this way).
     *
     * @throws IllegalArgumentException for a state of another method or of a step beyond this session's total
     */
    public void resume(MethodState saved) {
        requireOpen();
        if (!saved.method().equals(method.name())) {
            throw new IllegalArgumentException("cannot resume a " + method.name() + " session from a "
                    + saved.method() + " state");
        }
        if (saved.step() < 0 || saved.step() > spec.totalSteps()) {
            throw new IllegalArgumentException("cannot resume from the state after step " + saved.step()
                    + ": this session trains " + spec.totalSteps() + " steps");
        }
        method.restore(saved);
        trainer = new Trainer(base.model(), method, spec.maxGradNorm(), saved.step(), spec.backward());
    }

    /**
     * Runs update step {@link #completedSteps()} + 1 on {@code microBatches} (their gradients accumulate) at
     * learning rate {@code lr}; see {@link Trainer#step}.
     *
     * @throws IllegalStateException when all of the session's steps are done
     */
    public StepResult step(List<Batch> microBatches, float lr) {
        requireStepsLeft();
        return trainer.step(microBatches, lr);
    }

    private void requireStepsLeft() {
        requireOpen();
        if (trainer.completedSteps() >= spec.totalSteps()) {
            throw new IllegalStateException("all " + spec.totalSteps() + " steps of this session are done");
        }
    }

    /**
     * The gradient of micro-batch {@code index} of the next step alone (a data-parallel worker's share); nothing
     * changes. See {@link Trainer#gradientOf}.
     */
    public MicroBatchGradient gradientOf(Batch microBatch, int index, long stepTokens, List<long[]> choices) {
        requireStepsLeft();
        return trainer.gradientOf(microBatch, index, stepTokens, choices);
    }

    /** Whether the next step's micro-batch 0 must be computed first; see {@link Trainer#choosesFromFirstMicroBatch}. */
    public boolean choosesFromFirstMicroBatch() {
        requireOpen();
        return trainer.choosesFromFirstMicroBatch();
    }

    /**
     * Runs the next step from all its micro-batches' gradients, computed wherever their data was; bit for bit
     * {@link #step} on the same micro-batches. See {@link Trainer#applyStep}.
     */
    public StepResult applyStep(SummedGradient sum, float lr) {
        requireStepsLeft();
        return trainer.applyStep(sum, lr);
    }

    /** Mean masked cross-entropy of {@code batches} with the method's current values, without training. */
    public double evaluate(List<Batch> batches) {
        requireOpen();
        return trainer.evaluate(batches);
    }

    /** Update steps completed (skipped ones not counted), including those of a resumed state. */
    public int completedSteps() {
        return trainer.completedSteps();
    }

    /** A host copy of the method's state after the last completed step, for a checkpoint or an evaluation. */
    public MethodState state() {
        requireOpen();
        return method.state();
    }

    /**
     * Starts a SpIEL run from trained deltas (a fine-tuning of this session's base, e.g. a fork's adapter) instead of
     * random indices; before the first step only (see {@link SpielMethod#initialize}).
     */
    public void initialize(SparseFineTuning start) {
        requireOpen();
        if (!(method instanceof SpielMethod spiel)) {
            throw new IllegalArgumentException(method.name() + " cannot start from sparse deltas; only spiel-ag and"
                    + " spiel-ma runs can");
        }
        spiel.initialize(start.deltas());
    }

    /**
     * Makes a SpIEL method's reselections wait for decisions made elsewhere (see {@link SpielMethod#deferSelections});
     * other methods never reselect.
     */
    public void deferSelections() {
        requireOpen();
        if (method instanceof SpielMethod spiel) {
            spiel.deferSelections();
        }
    }

    /** The requests of a reselection waiting for its decisions, one per delta; empty when none waits. */
    public List<SelectionRequest> pendingSelection() {
        return method instanceof SpielMethod spiel ? spiel.pendingSelection() : List.of();
    }

    /** Carries out the decisions for {@link #pendingSelection()}, in the same order, and says what they did. */
    public Reselection applySelection(List<SelectionDecision> decisions) {
        requireOpen();
        if (!(method instanceof SpielMethod spiel)) {
            throw new IllegalStateException(method.name() + " does not reselect");
        }
        return spiel.applySelection(decisions);
    }

    public SessionSpec spec() {
        return spec;
    }

    /**
     * What a LoRA or (IA)3 run has trained so far, as a PEFT adapter of the base with {@code baseFingerprint}; empty
     * for the other methods (SpIEL's deltas are {@link FineTuningMethod#exportDeltas}, full fine-tuning changes the
     * model itself).
     */
    public Optional<PeftAdapter> peftAdapter(String baseFingerprint) {
        requireOpen();
        if (spec.method() instanceof LoraConfig lora) {
            return Optional.of(new PeftAdapter(PeftAdapter.Kind.LORA, lora.rank(), lora.alpha(), baseFingerprint,
                    method.exportTensors()));
        }
        if (spec.method() instanceof Ia3Config) {
            return Optional.of(new PeftAdapter(PeftAdapter.Kind.IA3, 0, 0f, baseFingerprint, method.exportTensors()));
        }
        return Optional.empty();
    }

    public FineTuningMethod method() {
        return method;
    }

    public LlamaModel model() {
        return base.model();
    }

    public Device device() {
        return base.device();
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the training session is closed");
        }
    }

    /**
     * Closes the method (a SpIEL method puts the base weights back), then the model and its manager. Closing again
     * does nothing.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            method.close();
        } finally {
            base.close();
        }
    }
}
