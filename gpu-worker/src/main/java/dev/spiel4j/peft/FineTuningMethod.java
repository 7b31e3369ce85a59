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
 * step's trainable leaves in the step's scope), for every micro-batch {@link #trainingPass} for the linears of its
 * forward pass(es), the backward pass (whole, or block by block from the top) and {@link #collectGradients} for
 * every block once its backward pass is done (gradients accumulate), {@link #gradients} (for global-norm clipping),
 * then {@link #update}. Outside a step, {@link #apply} evaluates with the current values and no gradients
 * (evaluation, generation).
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
     * The linears of one forward pass of micro-batch {@code microBatch} of the current step. A pass with
     * {@code recordGradients} false is not differentiated (activation checkpointing's first pass, which keeps only
     * the blocks' inputs): it must compute bit for bit the values of a recording pass, since each block is run again
     * recording inside its backward segment. By default {@code this}.
     */
    default LinearLayers trainingPass(int microBatch, boolean recordGradients) {
        return this;
    }

    /**
     * Called once per micro-batch and block when the backward pass through that block is done, while the block's
     * activations and their gradients are still open: a method whose gradients are computed from them (SpIEL)
     * accumulates them here, so they can be freed block by block.
     *
     * @param block          the block ({@code model.layers.<block>.*}) whose backward pass is done
     * @param microBatch     the micro-batch's place in the step
     */
    default void collectGradients(int block, int microBatch) {
    }

    /** The accumulated gradients of this step's trainable leaves (attached to the step's scope). */
    List<NDArray> gradients();

    /**
     * Makes {@code summed} this step's gradients in place of backward passes: data-parallel training sums the
     * micro-batches' gradients where they were computed and every replica applies the same sum. One array per
     * {@link #gradients()} entry, in that order and shape, attached to the step's scope; before {@link #update}.
     * What else the step's passes would have produced comes with {@link #useStatistics}.
     */
    void useGradients(List<NDArray> summed);

    /**
     * Whether step {@code step}'s micro-batch 0 makes choices the others' passes need ({@link #choices()}: SpIEL-AG
     * picks the growth candidates of a selection phase from micro-batch 0's dense gradient), so that a data-parallel
     * step computes micro-batch 0 before the others.
     */
    default boolean choosesFromFirstMicroBatch(int step) {
        return false;
    }

    /** What micro-batch 0 of the current step chose ({@link #choosesFromFirstMicroBatch}), by matrix; else empty. */
    default List<long[]> choices() {
        return List.of();
    }

    /** Makes micro-batch 0's {@code choices}, made elsewhere, this step's, before another micro-batch's pass. */
    default void adoptChoices(List<long[]> choices) {
        if (!choices.isEmpty()) {
            throw new IllegalArgumentException(name() + " makes no choices from a step's first micro-batch");
        }
    }

    /**
     * What this step's backward passes produced besides the gradients that a data-parallel step sums over
     * micro-batches too (SpIEL-AG's gradient at its growth candidates during a selection phase), by matrix, as host
     * copies; empty outside such steps.
     */
    default List<float[]> statistics() {
        return List.of();
    }

    /**
     * Makes {@code summed} ({@link #statistics()} of all micro-batches summed in micro-batch order) and micro-batch
     * 0's {@code choices} this step's, with {@link #useGradients}.
     */
    default void useStatistics(List<float[]> summed, List<long[]> choices) {
        if (!summed.isEmpty() || !choices.isEmpty()) {
            throw new IllegalArgumentException(name() + " sums no statistics besides its gradients");
        }
    }

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
     * Releases the native resources the method holds (its trained values and optimizer state) and leaves the model's base weights
     * as they were before the method was created (full fine-tuning, which trains them, excepted).
     */
    @Override
    default void close() {
    }
}
