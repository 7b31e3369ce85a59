package dev.spiel4j.peft.sft;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DropGrowSelectorTest {

    @Test
    void accumulatedGradientDropsSmallestAndGrowsLargestMeanGradient() {
        long[] idx = {10, 20, 30, 40};
        float[] absPhi = {0.5f, 0.1f, 0.3f, 0.0f};
        // Candidates: 30 is active and stays active, 20 is dropped and regrown (kept), 60 beats 50.
        CandidateStats stats = new CandidateStats(new long[]{20, 30, 50, 60}, new float[]{-0.9f, 5f, 0.2f, -0.4f},
                new float[]{0.5f, 13f, 0.04f, 0.1f}, 2);
        SelectionDecision d = DropGrowSelector.accumulatedGradient(idx, absPhi, stats, 2);
        assertArrayEquals(new int[]{3}, d.slots(), "slot 1 (index 20) was dropped and regrown: kept as is");
        assertArrayEquals(new long[]{60}, d.newIndices());
        assertArrayEquals(new float[]{-0.2f}, d.seedFirstMoment(), 1e-7f, "mean gradient");
        assertArrayEquals(new float[]{0.05f}, d.seedSecondMoment(), 1e-7f, "mean squared gradient");
    }

    @Test
    void fewerValidCandidatesThanFreedSlotsReplacesOnlyThatMany() {
        long[] idx = {10, 20, 30, 40};
        float[] absPhi = {0.5f, 0.1f, 0.3f, 0.0f};
        CandidateStats stats = new CandidateStats(new long[]{10, 30, 50}, new float[]{9, 9, 1}, new float[]{81, 81, 1}, 1);
        // Dropping 3 slots leaves 10 active; 30 was dropped but is regrown (its slot stays), so only 50 moves in,
        // into the slot with the smallest |phi|; the third dropped slot finds no candidate and stays.
        SelectionDecision d = DropGrowSelector.accumulatedGradient(idx, absPhi, stats, 3);
        assertArrayEquals(new int[]{3}, d.slots());
        assertArrayEquals(new long[]{50}, d.newIndices());
        assertEquals(0, DropGrowSelector.accumulatedGradient(idx, absPhi, stats, 0).size());
    }

    @Test
    void invariantsHoldOnRandomInputs() {
        Random rng = new Random(11);
        for (int trial = 0; trial < 50; trial++) {
            int size = 200;
            int k = 1 + rng.nextInt(60);
            long[] idx = distinct(rng, k, size);
            float[] absPhi = new float[k];
            for (int i = 0; i < k; i++) {
                absPhi[i] = rng.nextFloat();
            }
            int kc = 1 + rng.nextInt(80);
            long[] cand = distinct(rng, kc, size);
            float[] sum = new float[kc];
            for (int i = 0; i < kc; i++) {
                sum[i] = (float) rng.nextGaussian();
            }
            int n = rng.nextInt(k + 1);
            SelectionDecision d = DropGrowSelector.accumulatedGradient(idx, absPhi,
                    new CandidateStats(cand, sum, sum.clone(), 1), n);
            assertTrue(d.size() <= n);
            long[] after = idx.clone();
            for (int i = 0; i < d.size(); i++) {
                after[d.slots()[i]] = d.newIndices()[i];
            }
            assertEquals(k, Arrays.stream(after).distinct().count(), "indices stay unique, k fixed");
            Set<Long> candidates = new HashSet<>();
            Arrays.stream(cand).forEach(candidates::add);
            for (long g : d.newIndices()) {
                assertTrue(candidates.contains(g), "grown positions come from the candidates");
            }
        }
    }

    /** Many exact ties (and -0.0): the decision must follow the documented tie-breaks exactly. */
    @Test
    void accumulatedGradientFollowsTheTieBreaksOfAComparatorReference() {
        Random rng = new Random(23);
        float[] phiLevels = {0f, 0.25f, 0.5f};
        float[] gradLevels = {-1f, -0.5f, -0f, 0f, 0.5f, 1f};
        for (int trial = 0; trial < 200; trial++) {
            int size = 300;
            int k = 1 + rng.nextInt(40);
            long[] idx = distinct(rng, k, size);
            float[] absPhi = new float[k];
            for (int i = 0; i < k; i++) {
                absPhi[i] = phiLevels[rng.nextInt(phiLevels.length)];
            }
            int kc = 1 + rng.nextInt(60);
            long[] cand = distinct(rng, kc, size);
            float[] sum = new float[kc];
            float[] sum2 = new float[kc];
            for (int i = 0; i < kc; i++) {
                sum[i] = gradLevels[rng.nextInt(gradLevels.length)];
                sum2[i] = rng.nextFloat();
            }
            int n = rng.nextInt(k + 1);
            SelectionDecision d = DropGrowSelector.accumulatedGradient(idx, absPhi,
                    new CandidateStats(cand, sum, sum2, 2), n);

            // reference: boxed comparators over the rules in DropGrowSelector's documentation
            Integer[] drop = IntStream.range(0, k).boxed().toArray(Integer[]::new);
            Arrays.sort(drop, Comparator.<Integer>comparingDouble(s -> absPhi[s]).thenComparingInt(s -> s));
            Set<Long> kept = new HashSet<>();
            for (int i = n; i < k; i++) {
                kept.add(idx[drop[i]]);
            }
            Integer[] grow = IntStream.range(0, kc).boxed().toArray(Integer[]::new);
            Arrays.sort(grow, Comparator.<Integer>comparingDouble(c -> -Math.abs(sum[c])).thenComparingLong(c -> cand[c]));
            List<Integer> grown = new ArrayList<>();
            for (int c : grow) {
                if (grown.size() < n && !kept.contains(cand[c])) {
                    grown.add(c);
                }
            }
            Set<Long> droppedIdx = new HashSet<>();
            for (int i = 0; i < n; i++) {
                droppedIdx.add(idx[drop[i]]);
            }
            List<Integer> toPlace = grown.stream().filter(c -> !droppedIdx.remove(cand[c])).toList();
            List<Integer> slots = new ArrayList<>();
            for (int i = 0; i < n && slots.size() < toPlace.size(); i++) {
                if (droppedIdx.contains(idx[drop[i]])) {
                    slots.add(drop[i]);
                }
            }
            assertArrayEquals(slots.stream().mapToInt(Integer::intValue).toArray(), d.slots(), "trial " + trial);
            assertArrayEquals(toPlace.stream().mapToLong(c -> cand[c]).toArray(), d.newIndices(), "trial " + trial);
            float[] m1 = new float[toPlace.size()];
            for (int i = 0; i < m1.length; i++) {
                m1[i] = sum[toPlace.get(i)] / 2;
            }
            assertArrayEquals(m1, d.seedFirstMoment(), "trial " + trial);
        }
    }

    @Test
    void momentumGrowthEqualsBruteForceDenseTopN() {
        Random rng = new Random(5);
        for (int trial = 0; trial < 40; trial++) {
            int rows = 2 + rng.nextInt(9);
            int cols = 2 + rng.nextInt(9);
            int size = rows * cols;
            int k = 1 + rng.nextInt(size / 2);
            long[] idx = distinct(rng, k, size);
            float[] absPhi = new float[k];
            for (int i = 0; i < k; i++) {
                absPhi[i] = rng.nextFloat();
            }
            float[] r = new float[rows];
            float[] c = new float[cols];
            for (int i = 0; i < rows; i++) {
                r[i] = rng.nextFloat();
            }
            for (int j = 0; j < cols; j++) {
                c[j] = rng.nextFloat();
            }
            int n = rng.nextInt(k + 1);
            SelectionDecision d = DropGrowSelector.momentumApproximation(idx, absPhi, r, c, n);
            long[] after = idx.clone();
            for (int i = 0; i < d.size(); i++) {
                after[d.slots()[i]] = d.newIndices()[i];
            }
            assertEquals(bruteForce(idx, absPhi, r, c, n), sorted(after), "trial " + trial);
        }
    }

    /** Dense reference: score every inactive position with (r_i c_j)^(1/4) and take the top n. */
    private static List<Long> bruteForce(long[] idx, float[] absPhi, float[] r, float[] c, int n) {
        int k = idx.length;
        Integer[] order = IntStream.range(0, k).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble(s -> absPhi[s]));
        Set<Long> kept = new HashSet<>();
        for (int i = n; i < k; i++) {
            kept.add(idx[order[i]]);
        }
        List<Long> positions = new ArrayList<>();
        for (long p = 0; p < (long) r.length * c.length; p++) {
            if (!kept.contains(p)) {
                positions.add(p);
            }
        }
        positions.sort(Comparator.comparingDouble(p -> -Math.pow((double) r[(int) (p / c.length)] * c[(int) (p % c.length)], 0.25)));
        Set<Long> result = new HashSet<>(kept);
        result.addAll(positions.subList(0, n));
        return result.stream().sorted().toList();
    }

    private static List<Long> sorted(long[] a) {
        return Arrays.stream(a).sorted().boxed().toList();
    }

    private static long[] distinct(Random rng, int k, int size) {
        List<Long> all = new ArrayList<>();
        for (long i = 0; i < size; i++) {
            all.add(i);
        }
        java.util.Collections.shuffle(all, rng);
        return all.subList(0, k).stream().mapToLong(Long::longValue).toArray();
    }
}
