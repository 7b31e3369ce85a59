package dev.spiel4j.peft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.model.LinearLayers;

import java.util.List;
import java.util.Map;

/**
 * A way of fine-tuning a model (SpIEL-AG, SpIEL-MA, LoRA, (IA)3, full fine-tuning) behind one interface, so the
 * trainer never branches on a method's name. The method is the model's {@link LinearLayers}: it evaluates every
 * block linear with its own trainable parameters added.
 *
 * <p>Per update step {@code t = 1..T} the trainer calls, in this order: {@link #beginStep} (the method creates this
 * step's trainable leaves, and any gradient probes, in the step's scope), for every micro-batch the forward and
 * backward passes and {@link #collectGradients} (gradients accumulate), {@link #gradients} (for global-norm clipping),
 * then {@link #update}. Outside a
 * step, {@link #apply} evaluates with the current values and no gradients (evaluation, generation).
 */
public interface FineTuningMethod extends LinearLayers, AutoCloseable {

    /** Method name, e.g. {@code spiel-ag}. */
    String name();

    /** Number of trainable parameters. */
    long trainableParameters();

    /** Bytes of persistent optimizer (and selector) state. */
    long optimizerStateBytes();

    /**
     * Starts update step {@code step}: trainable leaves requiring gradients are created in {@code scope}, which
     * stays open until after {@link #update}.
     */
    void beginStep(NDManager scope, int step);

    /**
     * Called after each micro-batch's backward pass, while that micro-batch's activations and their gradients are
     * still open: a method whose gradients are computed from them (SpIEL) accumulates them here.
     *
     * @param lastMicroBatch whether this is the step's last micro-batch
     */
    default void collectGradients(boolean lastMicroBatch) {
    }

    /** The accumulated gradients of this step's trainable leaves (attached to the step's scope). */
    List<NDArray> gradients();

    /**
     * Whether what the method read from this step's backward passes besides {@link #gradients()} was finite (SpIEL-AG
     * reads the dense gradient at growth candidates). The trainer skips a step where it was not, as it skips one whose
     * gradient norm is not finite.
     */
    default boolean otherStatisticsFinite() {
        return true;
    }

    /**
     * Applies the optimizer with the accumulated gradients multiplied by {@code gradScale} and ends the step.
     *
     * @return whether the set of trained parameters changed (a SpIEL reselection)
     */
    boolean update(int step, float lr, float gradScale);

    /**
     * Abandons the step in progress (the trainer calls this when a forward or backward pass failed): gradients are
     * discarded, values and optimizer state stay as they were before {@link #beginStep}.
     */
    void abortStep();

    /** The sparse deltas (empty for methods that are not sparse). */
    default List<DeltaTensor> exportDeltas() {
        return List.of();
    }

    /** The method's trained tensors (deltas' values, LoRA factors, (IA)3 vectors, full weights) by name. */
    Map<String, HostTensor> exportTensors();

    /** State for resuming: trainable values plus optimizer and selector state. */
    MethodState state();

    /** Restores {@link #state()}; the method must have been created from the same spec and model. */
    void restore(MethodState state);

    /**
     * Releases native resources the method holds (most hold none between steps) and leaves the model's base weights
     * as they were before the method was created (full fine-tuning, which trains them, excepted).
     */
    @Override
    default void close() {
    }
}
