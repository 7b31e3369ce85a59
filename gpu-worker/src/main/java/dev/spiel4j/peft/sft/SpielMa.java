package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.optim.Sm3;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.TargetMatrix;

import java.util.List;
import java.util.Map;

/**
 * SpIEL-MA (paper section 3.3): SM3 over the slots, growth by {@code (r_i c_j)^(1/4)} from SM3's row and column
 * accumulators ({@link DropGrowSelector#momentumApproximation}); no dense top-K, no candidate statistics, the
 * same {@link DropGrowSchedule} for when and how many.
 */
public final class SpielMa extends SpielMethod {
    private final Sm3[] sm3;

    public SpielMa(SpielConfig config, List<TargetMatrix> targets, long modelParameters, int totalSteps,
                   Map<String, NDArray> weights, NDManager manager) {
        super(config, targets, modelParameters, totalSteps, weights, manager);
        sm3 = new Sm3[deltas.size()];
        for (int i = 0; i < sm3.length; i++) {
            TargetMatrix m = deltas.get(i).matrix();
            sm3[i] = new Sm3(held, m.rows(), m.cols(), config.optimizer().eps(), config.optimizer().weightDecay());
        }
    }

    @Override
    public long optimizerStateBytes() {
        long b = 0;
        for (Sm3 s : sm3) {
            b += s.stateBytes();
        }
        return b;
    }

    /** Delta {@code i}'s optimizer (read-only use: accumulators). */
    public Sm3 optimizer(int i) {
        return sm3[i];
    }

    @Override
    protected void optimize(int i, NDArray values, NDArray grads, float lr, float gradScale) {
        sm3[i].step(deltas.get(i).slots(), values, grads, lr, gradScale);
    }

    @Override
    protected SelectionRequest selectionRequest(int i, int t, int n) {
        SparseDelta d = deltas.get(i);
        return new SelectionRequest.MomentumApproximation(d.module(), t, n, d.indices(), d.absValues(),
                sm3[i].rowAccumulator(), sm3[i].columnAccumulator());
    }

    @Override
    protected void saveExtra(Map<String, HostTensor> out) {
        for (int i = 0; i < sm3.length; i++) {
            String p = deltas.get(i).module() + ".sm3.";
            out.put(p + "rows", HostArrays.f32(p + "rows", new long[]{deltas.get(i).matrix().rows()},
                    sm3[i].rowAccumulator()));
            out.put(p + "cols", HostArrays.f32(p + "cols", new long[]{deltas.get(i).matrix().cols()},
                    sm3[i].columnAccumulator()));
        }
    }

    @Override
    protected void restoreExtra(MethodState state) {
        for (int i = 0; i < sm3.length; i++) {
            String p = deltas.get(i).module() + ".sm3.";
            sm3[i].restore(HostArrays.floats(state.require(p + "rows")), HostArrays.floats(state.require(p + "cols")));
        }
    }
}
