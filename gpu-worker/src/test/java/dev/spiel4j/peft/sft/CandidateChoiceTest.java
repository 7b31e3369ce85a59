package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class CandidateChoiceTest {

    @Test
    void tiesAtTheKthMagnitudeGoToTheSmallerIndex() {
        try (NDManager m = NDManager.newBaseManager()) {
            float[] g = {0f, -3f, 0f, 2f, 0f, -2f, 0f, 1f};
            // |g| = 3 at 1, 2 at 3 and 5, 1 at 7, then the zeros: the first zero is index 0
            assertArrayEquals(new long[]{1, 3, 5, 7, 0},
                    AccumulatedGradients.largestMagnitudes(m.create(g), 5).toLongArray());
        }
    }

    @Test
    void aGradientWithNanOrInfinityAtTheTopGivesNoCandidates() {
        try (NDManager m = NDManager.newBaseManager()) {
            // a NaN compares false with everything: fewer than k positions are above or at the k-th value
            assertNull(AccumulatedGradients.largestMagnitudes(m.create(new float[]{0f, Float.NaN, 2f, 1f}), 2));
            assertNull(AccumulatedGradients.largestMagnitudes(m.create(new float[]{0f, Float.NEGATIVE_INFINITY, 2f, 1f}), 2));
            assertArrayEquals(new long[]{2, 3}, AccumulatedGradients.largestMagnitudes(m.create(new float[]{0f, 0.5f, 2f, 1f}), 2)
                    .toLongArray(), "finite gradients are unaffected");
        }
    }

    @Test
    void equalsASortByMagnitudeThenIndex() {
        SplittableRandom rng = new SplittableRandom(3);
        float[] g = new float[4000];
        for (int i = 0; i < g.length; i++) {
            // few distinct values, so that ties are everywhere
            g[i] = rng.nextInt(7) - 3;
        }
        int k = 1234;
        long[] expected = IntStream.range(0, g.length).boxed()
                .sorted(Comparator.<Integer>comparingDouble(i -> -Math.abs(g[i])).thenComparingInt(i -> i))
                .limit(k).mapToLong(Integer::longValue).sorted().toArray();
        try (NDManager m = NDManager.newBaseManager()) {
            long[] got = AccumulatedGradients.largestMagnitudes(m.create(g), k).toLongArray();
            Arrays.sort(got);
            assertArrayEquals(expected, got);
        }
    }

    @Test
    void theKthLargestOverChunksIsTheKthOfTheSortedArray() {
        SplittableRandom rng = new SplittableRandom(5);
        int n = 3 * (int) AccumulatedGradients.TOP_K_CHUNK + 12345; // four chunks, the last one short
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            // coarse values: ties at the k-th value and across chunks
            a[i] = rng.nextInt(20_000) / 16f;
        }
        float[] sorted = a.clone();
        Arrays.sort(sorted);
        try (NDManager m = NDManager.newBaseManager()) {
            for (int k : new int[]{1, 777, 20_000, n / 9}) {
                assertEquals(sorted[n - k], AccumulatedGradients.kthLargest(m.create(a), k).getFloat(), "k = " + k);
            }
        }
    }
}
