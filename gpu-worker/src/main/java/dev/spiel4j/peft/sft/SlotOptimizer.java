package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.optim.internal.AdamW;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.optim.internal.Sm3;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.TargetMatrix;

import java.util.List;
import java.util.Map;

/**
 * The optimizer of SpIEL's delta values, one per targeted matrix, its state on the engine: AdamW with per-slot ages
 * for SpIEL-AG ({@link Adam}), SM3 for SpIEL-MA ({@link Sm3Slots}).
 */
public sealed interface SlotOptimizer {

    /** Updates delta {@code i}'s values in place from this step's gradient at its slots. */
    void step(int i, SparseDelta delta, NDArray grads, float lr, float gradScale);

    /** Delta {@code i}'s slots were replaced as {@code decision} says: the state of the new slots starts here. */
    void replaced(int i, SelectionDecision decision);

    /** The age of each of delta {@code i}'s slots (steps since growth), or null when the optimizer keeps none. */
    int[] ages(int i);

    long stateBytes();

    /** Adds the state to a checkpoint's tensors, by delta. */
    void save(List<SparseDelta> deltas, Map<String, HostTensor> out);

    /** Restores what {@link #save} wrote. */
    void restore(List<SparseDelta> deltas, MethodState state);

    /**
     * AdamW per matrix, on the slots' values. A grown slot starts with moments seeded from the candidate's
     * accumulated gradient statistics (the decision's seeds), as if it had taken the selection phase's steps.
     */
    final class Adam implements SlotOptimizer {
        private final AdamW[] adam;

        Adam(List<SparseDelta> deltas, OptimizerSettings settings, NDManager held) {
            adam = new AdamW[deltas.size()];
            for (int i = 0; i < adam.length; i++) {
                adam[i] = new AdamW(held, new Shape(deltas.get(i).size()), settings);
            }
        }

        /** Delta {@code i}'s AdamW (read-only use: moments and ages). */
        public AdamW of(int i) {
            return adam[i];
        }

        @Override
        public void step(int i, SparseDelta delta, NDArray grads, float lr, float gradScale) {
            adam[i].step(delta.valueArray(), grads, lr, gradScale);
        }

        @Override
        public void replaced(int i, SelectionDecision decision) {
            adam[i].seed(decision.slots(), decision.seedFirstMoment(), decision.seedSecondMoment(),
                    decision.seedSamples());
        }

        @Override
        public int[] ages(int i) {
            return adam[i].ages();
        }

        @Override
        public long stateBytes() {
            long b = 0;
            for (AdamW a : adam) {
                b += a.stateBytes();
            }
            return b;
        }

        @Override
        public void save(List<SparseDelta> deltas, Map<String, HostTensor> out) {
            for (int i = 0; i < adam.length; i++) {
                String p = deltas.get(i).module() + ".adamw.";
                long[] shape = {adam[i].size()};
                out.put(p + "m", HostArrays.f32(p + "m", shape, adam[i].firstMoments()));
                out.put(p + "v", HostArrays.f32(p + "v", shape, adam[i].secondMoments()));
                out.put(p + "age", HostArrays.i32(p + "age", adam[i].ages()));
            }
        }

        @Override
        public void restore(List<SparseDelta> deltas, MethodState state) {
            for (int i = 0; i < adam.length; i++) {
                String p = deltas.get(i).module() + ".adamw.";
                adam[i].restore(HostArrays.floats(state.require(p + "m")), HostArrays.floats(state.require(p + "v")),
                        HostArrays.ints(state.require(p + "age")));
            }
        }
    }

    /**
     * SM3 per matrix: row and column accumulators instead of per-slot moments, so a grown slot needs no reset; the
     * accumulators are also SpIEL-MA's growth statistics ({@link GrowthCriterion.MomentumApproximation}).
     */
    final class Sm3Slots implements SlotOptimizer {
        private final Sm3[] sm3;

        Sm3Slots(List<SparseDelta> deltas, OptimizerSettings settings, NDManager held) {
            sm3 = new Sm3[deltas.size()];
            for (int i = 0; i < sm3.length; i++) {
                TargetMatrix m = deltas.get(i).matrix();
                sm3[i] = new Sm3(held, m.rows(), m.cols(), settings.eps(), settings.weightDecay());
            }
        }

        /** Delta {@code i}'s SM3 (read-only use: accumulators). */
        public Sm3 of(int i) {
            return sm3[i];
        }

        @Override
        public void step(int i, SparseDelta delta, NDArray grads, float lr, float gradScale) {
            sm3[i].step(delta.slots(), delta.valueArray(), grads, lr, gradScale);
        }

        @Override
        public void replaced(int i, SelectionDecision decision) {
        }

        @Override
        public int[] ages(int i) {
            return null;
        }

        @Override
        public long stateBytes() {
            long b = 0;
            for (Sm3 s : sm3) {
                b += s.stateBytes();
            }
            return b;
        }

        @Override
        public void save(List<SparseDelta> deltas, Map<String, HostTensor> out) {
            for (int i = 0; i < sm3.length; i++) {
                String p = deltas.get(i).module() + ".sm3.";
                out.put(p + "rows", HostArrays.f32(p + "rows", new long[]{deltas.get(i).matrix().rows()},
                        sm3[i].rowAccumulator()));
                out.put(p + "cols", HostArrays.f32(p + "cols", new long[]{deltas.get(i).matrix().cols()},
                        sm3[i].columnAccumulator()));
            }
        }

        @Override
        public void restore(List<SparseDelta> deltas, MethodState state) {
            for (int i = 0; i < sm3.length; i++) {
                String p = deltas.get(i).module() + ".sm3.";
                sm3[i].restore(HostArrays.floats(state.require(p + "rows")),
                        HostArrays.floats(state.require(p + "cols")));
            }
        }
    }
}
