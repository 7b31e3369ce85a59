package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.peft.MethodState;

import java.util.List;
import java.util.Map;

/**
 * Where a SpIEL variant grows new indices: what it observes while training and the request each reselection hands to
 * the {@link DropGrowSelector}. SpIEL-AG accumulates the gradient at candidate positions over a selection phase
 * ({@link AccumulatedGradients}); SpIEL-MA reads SM3's row and column accumulators ({@link MomentumApproximation}).
 *
 * <p>A step: {@link #beginStep}, then per layer and micro-batch {@link #observe} (only where
 * {@link #needsDenseGradient()}), then {@link #endStep} once the update was made or the step was abandoned.
 */
public sealed interface GrowthCriterion permits AccumulatedGradients, GrowthCriterion.MomentumApproximation {

    void beginStep(int t);

    /**
     * Whether this step needs every targeted layer's dense gradient {@code dL/dW'} ({@link #observe}); otherwise the
     * deltas' gradient may be gathered at the slots alone where that is cheaper ({@link GatheredGradient}).
     */
    boolean needsDenseGradient();

    /**
     * Micro-batch {@code microBatch}'s flat dense gradient {@code dL/dW'} of delta {@code i}'s matrix, valid only
     * during the call: what outlives it goes to {@code stepScope} or further.
     */
    void observe(int i, NDArray denseGradient, int microBatch, NDManager stepScope);

    /** See {@link dev.spiel4j.peft.FineTuningMethod#choosesFromFirstMicroBatch}. */
    default boolean choosesFromFirstMicroBatch(int t) {
        return false;
    }

    /** See {@link dev.spiel4j.peft.FineTuningMethod#choices}. */
    default List<long[]> choices() {
        return List.of();
    }

    /** See {@link dev.spiel4j.peft.FineTuningMethod#adoptChoices}; arrays it keeps go to {@code stepScope}. */
    default void adoptChoices(List<long[]> choices, NDManager stepScope) {
        if (!choices.isEmpty()) {
            throw new IllegalArgumentException("this growth criterion makes no choices from a first micro-batch");
        }
    }

    /** See {@link dev.spiel4j.peft.FineTuningMethod#statistics}. */
    default List<float[]> statistics() {
        return List.of();
    }

    /** See {@link dev.spiel4j.peft.FineTuningMethod#useStatistics}; arrays it keeps go to {@code stepScope}. */
    default void useStatistics(List<float[]> summed, List<long[]> choices, NDManager stepScope) {
        if (!summed.isEmpty() || !choices.isEmpty()) {
            throw new IllegalArgumentException("this growth criterion sums no statistics");
        }
    }

    /** Whether what this step observed is finite (a NaN or an infinity makes the step skipped). */
    boolean observedFinite();

    /** The step's update was made ({@code updated}: keep what it observed) or the step was abandoned (drop it). */
    void endStep(boolean updated);

    /** Delta {@code i}'s reselection request after step {@code t}, replacing up to {@code n} of its slots. */
    SelectionRequest request(int i, SparseDelta delta, int t, int n);

    long stateBytes();

    /** Adds the statistics a resumed run needs to a checkpoint's tensors, by delta. */
    void save(List<SparseDelta> deltas, Map<String, HostTensor> out);

    /** Restores what {@link #save} wrote. */
    void restore(List<SparseDelta> deltas, MethodState state);

    /**
     * SpIEL-MA (paper section 3.3): grow where {@code (r_i c_j)^(1/4)} from SM3's row and column accumulators is
     * largest ({@link DropGrowSelector#momentumApproximation}). It observes nothing itself: the accumulators are the
     * optimizer's state, updated by every step.
     */
    final class MomentumApproximation implements GrowthCriterion {
        private final SlotOptimizer.Sm3Slots sm3;

        MomentumApproximation(SlotOptimizer.Sm3Slots sm3) {
            this.sm3 = sm3;
        }

        @Override
        public void beginStep(int t) {
        }

        @Override
        public boolean needsDenseGradient() {
            return false;
        }

        @Override
        public void observe(int i, NDArray denseGradient, int microBatch, NDManager stepScope) {
            throw new IllegalStateException("SpIEL-MA observes no dense gradient");
        }

        @Override
        public boolean observedFinite() {
            return true;
        }

        @Override
        public void endStep(boolean updated) {
        }

        @Override
        public SelectionRequest request(int i, SparseDelta delta, int t, int n) {
            return new SelectionRequest.MomentumApproximation(delta.module(), t, n, delta.indices(), delta.absValues(),
                    sm3.of(i).rowAccumulator(), sm3.of(i).columnAccumulator());
        }

        @Override
        public long stateBytes() {
            return 0;
        }

        @Override
        public void save(List<SparseDelta> deltas, Map<String, HostTensor> out) {
        }

        @Override
        public void restore(List<SparseDelta> deltas, MethodState state) {
        }
    }
}
