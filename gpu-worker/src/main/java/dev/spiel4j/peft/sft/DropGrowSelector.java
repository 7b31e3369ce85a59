package dev.spiel4j.peft.sft;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.PriorityQueue;
import java.util.function.IntToLongFunction;
import java.util.function.LongPredicate;

/**
 * SpIEL's drop/grow decision for one matrix, as pure functions of plain host arrays (no engine, no state), so the
 * decision can be made wherever the statistics are sent.
 *
 * <p>Rules shared by both growth criteria: drop the {@code n} slots with the smallest |delta| (ties: lower slot
 * first); grow the {@code n} best positions that are not active after the drop; if fewer than {@code n} positions
 * are eligible, only that many are grown; a position that is both dropped and regrown keeps its slot untouched (value
 * and optimizer state included); the other grown positions replace the remaining dropped slots, smallest |delta|
 * first, and dropped slots left without a replacement stay as they are (k never changes).
 */
public final class DropGrowSelector {

    private DropGrowSelector() {
    }

    /** The decision for a request, whichever growth criterion it carries. */
    public static SelectionDecision decide(SelectionRequest request) {
        if (request instanceof SelectionRequest.AccumulatedGradient ag) {
            return accumulatedGradient(ag.slotIndices(), ag.absPhi(), ag.stats(), ag.replacements());
        }
        SelectionRequest.MomentumApproximation ma = (SelectionRequest.MomentumApproximation) request;
        return momentumApproximation(ma.slotIndices(), ma.absPhi(), ma.rowAccumulator(), ma.columnAccumulator(),
                ma.replacements());
    }

    /**
     * SpIEL-AG: grow the eligible candidates with the largest |mean gradient| (ties: lower index first), seeding
     * AdamW with the phase's mean gradient and mean squared gradient.
     *
     * @param slotIndices current flat index of every slot (unique)
     * @param absPhi      |delta| of every slot
     * @param stats       the phase's candidate statistics
     * @param n           slots to replace
     */
    public static SelectionDecision accumulatedGradient(long[] slotIndices, float[] absPhi, CandidateStats stats, int n) {
        long[] cand = stats.indices();
        float[] sum = stats.sumGrad();
        float[] sum2 = stats.sumSquaredGrad();
        int samples = stats.samples();
        // largest |mean gradient| first, ties: lower flat position first, via the candidate's rank by position
        // (candidates are distinct, so the rank is a tie value that fits the key)
        long[] positions = cand.clone();
        Arrays.sort(positions);
        int[] rank = new int[cand.length];
        int[] candidateOfRank = new int[cand.length];
        for (int i = 0; i < cand.length; i++) {
            rank[i] = Arrays.binarySearch(positions, cand[i]);
            candidateOfRank[rank[i]] = i;
        }
        int[] order = order(cand.length, i -> key(-Math.abs(sum[i]), rank[i]));
        for (int j = 0; j < order.length; j++) {
            order[j] = candidateOfRank[order[j]];
        }
        return decide(slotIndices, absPhi, n, samples, (active, want) -> {
            List<Grown> out = new ArrayList<>(want);
            for (int c : order) {
                if (out.size() == want) {
                    break;
                }
                if (!active.test(cand[c])) {
                    out.add(new Grown(cand[c], sum[c] / samples, sum2[c] / samples));
                }
            }
            return out;
        });
    }

    /**
     * SpIEL-MA: grow the eligible positions (i, j) with the largest {@code (r[i] c[j])^(1/4)}, equivalently the
     * largest {@code r[i] c[j]}, found by walking the frontier of rows and columns sorted by accumulator (value
     * descending, index ascending) with a heap: O((k + n) log(k + n)) work and no dense score matrix. Ties between
     * equal scores are broken by that sort order. Seeds are 0 (SM3 keeps no per-slot state).
     *
     * @param rowAcc SM3 row accumulator, length rows
     * @param colAcc SM3 column accumulator, length cols (flat index = row * cols + col)
     */
    public static SelectionDecision momentumApproximation(long[] slotIndices, float[] absPhi, float[] rowAcc,
                                                          float[] colAcc, int n) {
        int cols = colAcc.length;
        int[] rowOrder = descending(rowAcc);
        int[] colOrder = descending(colAcc);
        return decide(slotIndices, absPhi, n, 0, (active, want) -> {
            List<Grown> out = new ArrayList<>(want);
            // Heap entries are (a, b) positions in the sorted orders; each pair is pushed exactly once: (a, b+1)
            // always, (a+1, 0) only from column 0.
            PriorityQueue<int[]> heap = new PriorityQueue<>(Comparator
                    .<int[]>comparingDouble(p -> -((double) rowAcc[rowOrder[p[0]]] * colAcc[colOrder[p[1]]]))
                    .thenComparingInt(p -> p[0]).thenComparingInt(p -> p[1]));
            heap.add(new int[]{0, 0});
            while (out.size() < want && !heap.isEmpty()) {
                int[] p = heap.poll();
                long pos = (long) rowOrder[p[0]] * cols + colOrder[p[1]];
                if (!active.test(pos)) {
                    out.add(new Grown(pos, 0f, 0f));
                }
                if (p[1] + 1 < cols) {
                    heap.add(new int[]{p[0], p[1] + 1});
                }
                if (p[1] == 0 && p[0] + 1 < rowAcc.length) {
                    heap.add(new int[]{p[0] + 1, 0});
                }
            }
            return out;
        });
    }

    private record Grown(long index, float firstMoment, float secondMoment) {
    }

    @FunctionalInterface
    private interface Grower {
        /** Up to {@code want} positions, best first, none of them active. */
        List<Grown> grow(LongPredicate activeAfterDrop, int want);
    }

    /** @param seedSamples gradients the grown slots' seeds are the means of (0: no seeds) */
    private static SelectionDecision decide(long[] slotIndices, float[] absPhi, int n, int seedSamples,
                                            Grower grower) {
        int k = slotIndices.length;
        if (absPhi.length != k) {
            throw new IllegalArgumentException(k + " slots but " + absPhi.length + " |delta| values");
        }
        if (n < 0) {
            throw new IllegalArgumentException("cannot replace a negative number of slots: " + n);
        }
        int drop = Math.min(n, k);
        if (drop == 0) {
            return SelectionDecision.none();
        }
        int[] dropOrder = order(k, s -> key(absPhi[s], s));
        long[] kept = new long[k - drop];
        for (int i = drop; i < k; i++) {
            kept[i - drop] = slotIndices[dropOrder[i]];
        }
        Arrays.sort(kept);
        List<Grown> grown = grower.grow(pos -> Arrays.binarySearch(kept, pos) >= 0, drop);
        // A grown position that is the index of a dropped slot keeps that slot as it is (value, optimizer state);
        // the other grown positions go to the remaining dropped slots, smallest |delta| first. With fewer grown
        // positions than dropped slots, the dropped slots left over simply stay.
        long[] dropped = new long[drop];
        for (int i = 0; i < drop; i++) {
            dropped[i] = slotIndices[dropOrder[i]];
        }
        Arrays.sort(dropped);
        boolean[] regrown = new boolean[drop]; // by position in `dropped`
        List<Grown> toPlace = new ArrayList<>(grown.size());
        for (Grown g : grown) {
            int at = Arrays.binarySearch(dropped, g.index());
            if (at >= 0) {
                regrown[at] = true;
            } else {
                toPlace.add(g);
            }
        }
        int[] slots = new int[toPlace.size()];
        long[] idx = new long[toPlace.size()];
        float[] m1 = new float[toPlace.size()];
        float[] m2 = new float[toPlace.size()];
        int next = 0;
        for (int i = 0; i < drop && next < toPlace.size(); i++) {
            int slot = dropOrder[i];
            if (!regrown[Arrays.binarySearch(dropped, slotIndices[slot])]) {
                Grown g = toPlace.get(next);
                slots[next] = slot;
                idx[next] = g.index();
                m1[next] = g.firstMoment();
                m2[next] = g.secondMoment();
                next++;
            }
        }
        return new SelectionDecision(slots, idx, m1, m2, seedSamples);
    }

    private static int[] descending(float[] values) {
        return order(values.length, i -> key(-values[i], i));
    }

    /**
     * The tie values of {@code n} elements sorted by {@link #key}: a primitive sort, no boxed comparator (reselection
     * sorts every slot and candidate of every matrix, millions at 7B scale).
     */
    private static int[] order(int n, IntToLongFunction key) {
        long[] keys = new long[n];
        for (int i = 0; i < n; i++) {
            keys[i] = key.applyAsLong(i);
        }
        Arrays.sort(keys);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = (int) keys[i];
        }
        return out;
    }

    /**
     * A sort key ordering by {@code primary} as {@link Double#compare} does (-0.0 before 0.0, NaN last), then by
     * {@code tie} (a distinct non-negative int per element, returned by {@link #order}).
     */
    private static long key(float primary, int tie) {
        int bits = Float.floatToIntBits(primary);
        int ordered = bits >= 0 ? bits : bits ^ 0x7fffffff; // negative floats: larger magnitude sorts first
        return ((long) ordered << 32) | tie;
    }
}
