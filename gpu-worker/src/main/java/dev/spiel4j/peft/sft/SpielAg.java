package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.optim.AdamW;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.MethodSpec;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.TargetMatrix;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * SpIEL-AG (paper section 3.2): AdamW with per-slot ages on the deltas; growth by accumulated gradients.
 *
 * <p>Selection phase of a reselection at step t (steps {@code t-gamma+1 .. t}, see {@link DropGrowSchedule}): on its
 * first step the top-K positions of each matrix's dense gradient {@code dL/dW'} by magnitude become the candidates
 * (K = candidateFactor * k); the dense gradient is the one {@link SpielMethod} forms per layer anyway, so choosing
 * them costs a top-K, and only the K chosen positions leave the engine. On the later phase steps the gradient at the
 * candidates is read the same way, and sum, sum of squares and count are accumulated in {@link CandidateStats}.
 * Statistics use the raw (unclipped) step gradients and are committed only when the step's update is (a skipped
 * step contributes nothing). At the reselection the {@link DropGrowSelector} decides and replaced slots get phi = 0,
 * AdamW moments seeded with the candidates' mean gradient and mean squared gradient, and age 0.
 */
public final class SpielAg extends SpielMethod {
    private final AdamW[] adam;
    private final CandidateStats[] stats;
    /** Phase start: the dense gradient summed over the step's earlier micro-batches (null with one micro-batch). */
    private final NDArray[] denseSum;
    /** Phase start: the candidates chosen this step, committed by {@link #afterOptimize}. */
    private final CandidateStats[] chosen;
    /** Later phase steps: this step's gradient at the candidates. */
    private final NDArray[] candidateGrads;
    private boolean phaseStart;
    private boolean tracking;
    /** This step's dense gradient held a NaN or an infinity where candidates are chosen or read. */
    private boolean nonFiniteCandidates;

    public SpielAg(MethodSpec spec, List<TargetMatrix> targets, long modelParameters, int totalSteps,
                   Map<String, NDArray> weights, NDManager manager) {
        super(spec, targets, modelParameters, totalSteps, weights, manager);
        int n = deltas.size();
        adam = new AdamW[n];
        for (int i = 0; i < n; i++) {
            adam[i] = new AdamW(held, new Shape(deltas.get(i).size()), spec.beta1(), spec.beta2(), spec.eps(),
                    spec.weightDecay());
        }
        stats = new CandidateStats[n];
        denseSum = new NDArray[n];
        chosen = new CandidateStats[n];
        candidateGrads = new NDArray[n];
    }

    @Override
    public long optimizerStateBytes() {
        long b = 0;
        for (AdamW a : adam) {
            b += a.stateBytes();
        }
        return b;
    }

    /** Candidate statistics of delta {@code i} in the current phase, or null outside a phase. */
    public CandidateStats candidateStats(int i) {
        return stats[i];
    }

    /** Delta {@code i}'s optimizer (read-only use: moments and ages). */
    public AdamW optimizer(int i) {
        return adam[i];
    }

    @Override
    protected void onBeginStep(NDManager scope, int t) {
        phaseStart = schedule.isPhaseStart(t);
        tracking = !phaseStart && schedule.isPhaseStep(t);
        clearStep();
    }

    @Override
    protected void onAbort() {
        // statistics of earlier phase steps stay; this step simply contributes no sample
        clearStep();
    }

    private void clearStep() {
        Arrays.fill(denseSum, null);
        Arrays.fill(chosen, null);
        Arrays.fill(candidateGrads, null);
        nonFiniteCandidates = false;
    }

    @Override
    public boolean otherStatisticsFinite() {
        if (nonFiniteCandidates) {
            return false;
        }
        for (NDArray g : candidateGrads) {
            if (g != null && !allFinite(g)) {
                return false;
            }
        }
        return true;
    }

    private static boolean allFinite(NDArray a) {
        return !a.isNaN().any().getBoolean() && !a.isInfinite().any().getBoolean();
    }

    @Override
    protected void onLayerGradient(int i, NDArray denseGradient, boolean lastMicroBatch, NDManager stepScope) {
        if (phaseStart) {
            if (lastMicroBatch) {
                NDArray total = denseSum[i] == null ? denseGradient : denseGradient.add(denseSum[i]);
                int k = (int) Math.min(deltas.get(i).matrix().size(),
                        Math.max(1, Math.round(spec.candidateFactor() * deltas.get(i).size())));
                chosen[i] = largestMagnitudes(total, k);
                nonFiniteCandidates |= chosen[i] == null;
                denseSum[i] = null;
            } else {
                denseSum[i] = accumulate(denseSum[i], denseGradient, stepScope);
            }
        } else if (tracking && stats[i] != null && stats[i].indices().length > 0) {
            NDArray g = denseGradient.take(EngineArrays.of(denseGradient.getManager(), stats[i].indices()));
            candidateGrads[i] = accumulate(candidateGrads[i], g, stepScope);
        }
    }

    /** {@code sum + g}, kept in {@code stepScope} ({@code g} may be dropped after the call). */
    private static NDArray accumulate(NDArray sum, NDArray g, NDManager stepScope) {
        if (sum == null) {
            NDArray copy = g.duplicate();
            copy.attach(stepScope);
            return copy;
        }
        return sum.addi(g);
    }

    @Override
    protected void optimize(int i, NDArray values, NDArray grads, float lr, float gradScale) {
        adam[i].step(values, grads, lr, gradScale);
    }

    @Override
    protected void afterOptimize(int t) {
        for (int i = 0; i < deltas.size(); i++) {
            if (chosen[i] != null) {
                stats[i] = chosen[i];
            } else if (candidateGrads[i] != null) {
                stats[i] = stats[i].plus(candidateGrads[i].toFloatArray());
            }
        }
        clearStep();
    }

    /**
     * The k positions of the largest |g|, ties at the k-th value broken by the smaller flat index. The engine's topK
     * orders equal values arbitrarily, and a dense gradient has many exact ties (often zeros), so leaving the choice to
     * it made identical runs pick different candidates now and then; here only the k-th value comes from the engine,
     * and one pass over the gradient on the host picks the same positions every time.
     *
     * @return null when g is not finite where it matters: a NaN compares false with everything (so fewer than k
     *     positions are above or at the k-th value), or a chosen value is infinite; the step is then skipped
     */
    static CandidateStats largestMagnitudes(NDArray g, int k) {
        NDArray abs = g.abs();
        NDArray kth = EngineArrays.scalar(g.getManager(), abs.topK(k, 0, true, true).get(0).getFloat(k - 1));
        // nonzero() lists positions in index order, so both sets are deterministic; only these leave the engine
        long[] above = abs.gt(kth).nonzero().toLongArray();
        long[] tied = abs.eq(kth).nonzero().toLongArray();
        if (above.length + tied.length < k) {
            return null;
        }
        long[] idx = new long[k];
        System.arraycopy(above, 0, idx, 0, above.length);
        System.arraycopy(tied, 0, idx, above.length, k - above.length);
        float[] values = g.take(EngineArrays.of(g.getManager(), idx)).toFloatArray();
        for (float v : values) {
            if (!Float.isFinite(v)) {
                return null;
            }
        }
        return CandidateStats.first(idx, values);
    }

    @Override
    protected SelectionRequest selectionRequest(int i, int t, int n) {
        SparseDelta d = deltas.get(i);
        if (stats[i] == null) {
            throw new IllegalStateException(d.module() + ": reselection without candidate statistics");
        }
        SelectionRequest request = new SelectionRequest.AccumulatedGradient(d.module(), t, n, d.indices(),
                d.absValues(), stats[i]);
        stats[i] = null; // a phase's statistics serve exactly one reselection
        return request;
    }

    @Override
    protected void onReplaced(int i, SelectionDecision decision) {
        adam[i].seed(decision.slots(), decision.seedFirstMoment(), decision.seedSecondMoment());
    }

    @Override
    protected void saveExtra(Map<String, HostTensor> out) {
        for (int i = 0; i < deltas.size(); i++) {
            String p = deltas.get(i).module() + ".adamw.";
            long[] shape = {adam[i].size()};
            out.put(p + "m", HostArrays.f32(p + "m", shape, adam[i].firstMoments()));
            out.put(p + "v", HostArrays.f32(p + "v", shape, adam[i].secondMoments()));
            out.put(p + "age", HostArrays.i32(p + "age", adam[i].ages()));
            if (stats[i] != null) {
                String c = deltas.get(i).module() + ".candidates.";
                CandidateStats s = stats[i];
                long[] cs = {s.indices().length};
                out.put(c + "indices", HostArrays.i64(c + "indices", s.indices()));
                out.put(c + "sum", HostArrays.f32(c + "sum", cs, s.sumGrad()));
                out.put(c + "sum_sq", HostArrays.f32(c + "sum_sq", cs, s.sumSquaredGrad()));
                out.put(c + "samples", HostArrays.i32(c + "samples", new int[]{s.samples()}));
            }
        }
    }

    @Override
    protected void restoreExtra(MethodState state) {
        for (int i = 0; i < deltas.size(); i++) {
            String p = deltas.get(i).module() + ".adamw.";
            adam[i].restore(HostArrays.floats(state.require(p + "m")), HostArrays.floats(state.require(p + "v")),
                    HostArrays.ints(state.require(p + "age")));
            String c = deltas.get(i).module() + ".candidates.";
            stats[i] = state.tensors().containsKey(c + "indices")
                    ? new CandidateStats(HostArrays.longs(state.require(c + "indices")),
                    HostArrays.floats(state.require(c + "sum")), HostArrays.floats(state.require(c + "sum_sq")),
                    HostArrays.ints(state.require(c + "samples"))[0])
                    : null;
        }
    }
}
