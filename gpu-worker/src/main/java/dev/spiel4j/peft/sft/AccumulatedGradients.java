package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.MethodState;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * SpIEL-AG's growth criterion (paper section 3.2): accumulated gradients at candidate positions.
 *
 * <p>Selection phase of a reselection at step t (steps {@code t-gamma+1 .. t}, see {@link DropGrowSchedule}): on its
 * first step the top-K positions of each matrix's dense gradient {@code dL/dW'} of the step's micro-batch 0 by
 * magnitude become the candidates (K = candidateFactor * k), as in the paper's released implementation; the dense
 * gradient is the one {@link SpielMethod} forms per layer anyway, so choosing them costs a top-K, and only the K chosen
 * positions leave the engine. Taking them from micro-batch 0 alone keeps a data-parallel step exact and O(K): the
 * worker that computes micro-batch 0 chooses, the others are told ({@link #choices}, {@link #adoptChoices}). On every
 * phase step, the first included, the step's gradient at the candidates (summed over its micro-batches) is one sample,
 * and sum, sum of squares and count are accumulated on the engine
 * ({@link Candidates}, the float32 sums of {@link CandidateStats#plus}); they go to the host as a
 * {@link CandidateStats} only for the reselection and for checkpoints.
 * Statistics use the raw (unclipped) step gradients and are committed only when the step's update is (a skipped
 * step contributes nothing). At the reselection the {@link DropGrowSelector} decides; replaced slots get phi = 0 and
 * AdamW moments seeded with the candidates' mean gradient and mean squared gradient ({@link SlotOptimizer.Adam}).
 */
public final class AccumulatedGradients implements GrowthCriterion {
    private final DropGrowSchedule schedule;
    /** Candidates per matrix. */
    private final int[] candidateCount;
    private final Candidates[] stats;
    /** Phase start: the candidates' flat int64 indices chosen from micro-batch 0 (in the step's scope). */
    private final NDArray[] chosen;
    /** Phase steps: this step's gradient at the candidates, summed over its micro-batches (in the step's scope). */
    private final NDArray[] candidateGrads;
    private final NDManager held;
    private boolean phaseStart;
    private boolean tracking;
    /** This step's dense gradient held a NaN or an infinity where candidates are chosen or read. */
    private boolean nonFiniteCandidates;

    /** @param held where the statistics live between steps (the method's long-lived manager) */
    AccumulatedGradients(DropGrowSchedule schedule, List<SparseDelta> deltas, double candidateFactor, NDManager held) {
        this.schedule = schedule;
        this.held = held;
        int n = deltas.size();
        candidateCount = new int[n];
        for (int i = 0; i < n; i++) {
            SparseDelta d = deltas.get(i);
            candidateCount[i] = (int) Math.min(d.matrix().size(), Math.max(1, Math.round(candidateFactor * d.size())));
        }
        stats = new Candidates[n];
        chosen = new NDArray[n];
        candidateGrads = new NDArray[n];
    }

    /** Candidate statistics of delta {@code i} in the current phase (a host copy), or null outside a phase. */
    public CandidateStats candidateStats(int i) {
        return stats[i] == null ? null : stats[i].toHost();
    }

    @Override
    public void beginStep(int t) {
        phaseStart = schedule.isPhaseStart(t);
        tracking = !phaseStart && schedule.isPhaseStep(t);
        clearStep();
    }

    @Override
    public boolean needsDenseGradient() {
        return phaseStart || tracking;
    }

    @Override
    public void observe(int i, NDArray denseGradient, int microBatch, NDManager stepScope) {
        NDArray at;
        if (phaseStart) {
            if (microBatch == 0) {
                NDArray idx = largestMagnitudes(denseGradient, candidateCount[i]);
                if (idx == null) {
                    nonFiniteCandidates = true;
                    return;
                }
                idx.attach(stepScope); // the layer's scope closes when this returns
                chosen[i] = idx;
            } else if (chosen[i] == null) {
                if (nonFiniteCandidates) {
                    return; // micro-batch 0 could not choose: the step is skipped
                }
                throw new IllegalStateException("micro-batch " + microBatch + " of the selection phase's first step "
                        + "came before micro-batch 0 chose the candidates");
            }
            at = chosen[i];
        } else if (tracking && stats[i] != null && stats[i].size() > 0) {
            at = stats[i].indices64(denseGradient.getManager());
        } else {
            return;
        }
        candidateGrads[i] = accumulate(candidateGrads[i], denseGradient.take(at), stepScope);
    }

    @Override
    public boolean choosesFromFirstMicroBatch(int t) {
        return schedule.isPhaseStart(t);
    }

    @Override
    public List<long[]> choices() {
        if (!phaseStart) {
            return List.of();
        }
        List<long[]> out = new ArrayList<>();
        for (NDArray c : chosen) {
            out.add(c == null ? new long[0] : c.toLongArray()); // none: micro-batch 0's gradient was not finite
        }
        return out;
    }

    @Override
    public void adoptChoices(List<long[]> choices, NDManager stepScope) {
        if (!phaseStart && choices.isEmpty()) {
            return;
        }
        if (!phaseStart || choices.size() != chosen.length) {
            throw new IllegalArgumentException(choices.size() + " choices of micro-batch 0 for a step " + (phaseStart
                    ? "with " + chosen.length + " matrices" : "outside a selection phase's first step"));
        }
        for (int i = 0; i < chosen.length; i++) {
            long[] c = choices.get(i);
            if (c.length == 0) {
                nonFiniteCandidates = true;
            } else {
                chosen[i] = EngineArrays.of(stepScope, c);
            }
        }
    }

    @Override
    public List<float[]> statistics() {
        if (!phaseStart && !tracking) {
            return List.of();
        }
        List<float[]> out = new ArrayList<>();
        for (NDArray g : candidateGrads) {
            out.add(g == null ? new float[0] : g.toFloatArray());
        }
        return out;
    }

    @Override
    public void useStatistics(List<float[]> summed, List<long[]> choices, NDManager stepScope) {
        if (phaseStart) {
            adoptChoices(choices, stepScope);
        } else if (!choices.isEmpty()) {
            throw new IllegalArgumentException("choices for a step outside a selection phase's first step");
        }
        if (summed.isEmpty()) {
            return;
        }
        if (summed.size() != candidateGrads.length) {
            throw new IllegalArgumentException(summed.size() + " statistics for " + candidateGrads.length + " matrices");
        }
        for (int i = 0; i < candidateGrads.length; i++) {
            if (summed.get(i).length > 0) {
                candidateGrads[i] = EngineArrays.of(stepScope, summed.get(i));
            }
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
    public boolean observedFinite() {
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
    public void endStep(boolean updated) {
        if (updated) {
            for (int i = 0; i < stats.length; i++) {
                if (chosen[i] != null) {
                    replaceStats(i, Candidates.first(chosen[i], candidateGrads[i]));
                    stats[i].attach(held);
                } else if (candidateGrads[i] != null) {
                    stats[i].add(candidateGrads[i]);
                }
            }
        }
        // an abandoned step's statistics of earlier phase steps stay; it simply contributes no sample
        clearStep();
    }

    private void clearStep() {
        Arrays.fill(chosen, null);
        Arrays.fill(candidateGrads, null);
        nonFiniteCandidates = false;
    }

    private void replaceStats(int i, Candidates next) {
        if (stats[i] != null) {
            stats[i].close();
        }
        stats[i] = next;
    }

    @Override
    public SelectionRequest request(int i, SparseDelta delta, int t, int n) {
        if (stats[i] == null) {
            throw new IllegalStateException(delta.module() + ": reselection without candidate statistics");
        }
        SelectionRequest request = new SelectionRequest.AccumulatedGradient(delta.module(), t, n, delta.indices(),
                delta.absValues(), stats[i].toHost());
        replaceStats(i, null); // a phase's statistics serve exactly one reselection
        return request;
    }

    @Override
    public long stateBytes() {
        long b = 0;
        for (Candidates c : stats) {
            b += c == null ? 0 : c.bytes(); // during a selection phase
        }
        return b;
    }

    @Override
    public void save(List<SparseDelta> deltas, Map<String, HostTensor> out) {
        for (int i = 0; i < stats.length; i++) {
            if (stats[i] != null) {
                String c = deltas.get(i).module() + ".candidates.";
                CandidateStats s = stats[i].toHost();
                long[] cs = {s.indices().length};
                out.put(c + "indices", HostArrays.i64(c + "indices", s.indices()));
                out.put(c + "sum", HostArrays.f32(c + "sum", cs, s.sumGrad()));
                out.put(c + "sum_sq", HostArrays.f32(c + "sum_sq", cs, s.sumSquaredGrad()));
                out.put(c + "samples", HostArrays.i32(c + "samples", new int[]{s.samples()}));
            }
        }
    }

    @Override
    public void restore(List<SparseDelta> deltas, MethodState state) {
        for (int i = 0; i < stats.length; i++) {
            String c = deltas.get(i).module() + ".candidates.";
            replaceStats(i, state.tensors().containsKey(c + "indices")
                    ? Candidates.of(new CandidateStats(HostArrays.longs(state.require(c + "indices")),
                    HostArrays.floats(state.require(c + "sum")), HostArrays.floats(state.require(c + "sum_sq")),
                    HostArrays.ints(state.require(c + "samples"))[0]), held)
                    : null);
        }
    }

    /**
     * The k positions of the largest |g|, ties at the k-th value broken by the smaller flat index. The engine's topK
     * orders equal values arbitrarily, and a dense gradient has many exact ties (often zeros), so leaving the choice to
     * it made identical runs pick different candidates now and then; here only the k-th value comes from topK, and
     * the positions above it and tied with it are listed in index order ({@code nonzero}), the tied ones cut after
     * the first that complete k: the same positions every time, without leaving the engine.
     *
     * @return the candidates' flat int64 indices (in g's manager), or null when g is not finite where it matters: a
     *     NaN compares false with everything (so fewer than k positions are above or at the k-th value), or a chosen
     *     value is infinite; the step is then skipped
     */
    static NDArray largestMagnitudes(NDArray g, int k) {
        NDArray abs = g.abs();
        NDArray kth = kthLargest(abs, k);
        NDArray above = abs.gt(kth).nonzero().reshape(-1);
        NDArray tied = abs.eq(kth).nonzero().reshape(-1);
        long missing = k - above.size();
        if (missing > tied.size()) {
            return null;
        }
        NDArray idx = NDArrays.concat(new NDList(above, tied.get(new NDIndex().addSliceDim(0, missing))));
        return allFinite(g.take(idx)) ? idx : null;
    }

    /**
     * The k-th largest value of the flat array {@code a}. The engine's topK keeps a scratch copy of its whole input with
     * an int64 index per element (12 bytes per weight, the largest array of a selection step on a big matrix), so the
     * top k of each chunk of {@link #TOP_K_CHUNK} elements are taken first and the k-th largest of their union
     * second: every one of the k largest is among its chunk's top k, so the value is exactly the same.
     */
    static NDArray kthLargest(NDArray a, int k) {
        long n = a.size();
        long chunks = (n + TOP_K_CHUNK - 1) / TOP_K_CHUNK;
        NDArray candidates = a;
        if (chunks > 1 && chunks * k < n / 2) {
            List<NDArray> tops = new ArrayList<>();
            for (long from = 0; from < n; from += TOP_K_CHUNK) {
                NDArray part = a.get(from + ":" + Math.min(n, from + TOP_K_CHUNK));
                tops.add(part.topK((int) Math.min(k, part.size()), 0, true, false).get(0));
            }
            candidates = NDArrays.concat(new NDList(tops));
        }
        return candidates.topK(k, 0, true, false).get(0).get(k - 1);
    }

    /** Elements per chunk of {@link #kthLargest}: 3 MiB of topK scratch. */
    static final long TOP_K_CHUNK = 1 << 18;

    /**
     * SpIEL-AG's growth statistics of one matrix during a phase, on the engine: the candidates' flat indices (int32:
     * a targeted matrix has fewer than 2^31 weights, and the candidates are held through the whole phase, so 4 bytes
     * per candidate less than int64 for the engine's {@code take}, which gets a widened copy of one matrix at a time)
     * and, per candidate, the sum of its gradients and of its squared gradients (float32, the same roundings as
     * {@link CandidateStats#plus}) over {@code samples} steps.
     */
    static final class Candidates implements AutoCloseable {
        private final NDArray indices;
        private final NDArray sum;
        private final NDArray sumSquared;
        private int samples;

        private Candidates(NDArray indices, NDArray sum, NDArray sumSquared, int samples) {
            this.indices = indices;
            this.sum = sum;
            this.sumSquared = sumSquared;
            this.samples = samples;
        }

        /**
         * The statistics of a phase's first step from the candidates' int64 indices and gradients, in the arrays'
         * manager ({@code grads} becomes the sum).
         */
        static Candidates first(NDArray indices, NDArray grads) {
            return new Candidates(indices.toType(DataType.INT32, false), grads, grads.mul(grads), 1);
        }

        static Candidates of(CandidateStats s, NDManager manager) {
            int[] narrow = new int[s.indices().length];
            for (int j = 0; j < narrow.length; j++) {
                narrow[j] = Math.toIntExact(s.indices()[j]);
            }
            return new Candidates(EngineArrays.of(manager, narrow), EngineArrays.of(manager, s.sumGrad()),
                    EngineArrays.of(manager, s.sumSquaredGrad()), s.samples());
        }

        /** The candidates' flat indices as int64 (what the engine's take wants), in {@code manager}. */
        NDArray indices64(NDManager manager) {
            return EngineArrays.borrow(indices, manager).toType(DataType.INT64, false);
        }

        long size() {
            return indices.size();
        }

        /** One more step's gradients at the candidates. */
        void add(NDArray grads) {
            sum.addi(grads);
            sumSquared.addi(grads.mul(grads));
            samples++;
        }

        void attach(NDManager manager) {
            indices.attach(manager);
            sum.attach(manager);
            sumSquared.attach(manager);
        }

        /** An int32 index and two float32 sums per candidate. */
        long bytes() {
            return 12L * size();
        }

        CandidateStats toHost() {
            long[] wide = Arrays.stream(indices.toIntArray()).asLongStream().toArray();
            return new CandidateStats(wide, sum.toFloatArray(), sumSquared.toFloatArray(), samples);
        }

        @Override
        public void close() {
            indices.close();
            sum.close();
            sumSquared.close();
        }
    }
}
