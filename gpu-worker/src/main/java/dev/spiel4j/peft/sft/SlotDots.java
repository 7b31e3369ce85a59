package dev.spiel4j.peft.sft;

import java.util.stream.IntStream;

/**
 * Dot products over the tokens, one per slot, between rows of {@code dY^T} and of {@code X^T} held on the host: the
 * inner loop of {@link HostSlotGradient}.
 *
 * <p>Every dot product is summed in one fixed order, so the result does not depend on the thread count, on the
 * CPU's vector width or on whether the JVM was started with {@code --add-modules jdk.incubator.vector} (which makes
 * it several times faster: {@link VectorSlotDots}). The order, for {@code n} tokens: sixteen running sums, sum
 * {@code l} taking the products of the tokens {@code t = l (mod 16)} of the full groups of sixteen, each added by a
 * fused multiply-add ({@link Math#fma}); sums {@code l} and {@code l + 8} added; the eight results added pairwise,
 * {@code ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))}; then the products of the remaining tokens fused in one
 * by one. Eight lanes of 256 bits, two of them a step, are what the vector form computes.
 */
final class SlotDots {
    /** Whether the vector module is in this JVM; its class is never loaded without it. */
    static final boolean VECTORIZED = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    /** Slots per parallel task: enough work per task to amortize its scheduling. */
    private static final int SLOTS_PER_TASK = 2048;

    private SlotDots() {
    }

    /**
     * {@code out[j] = sum_t rowsT[r_j * tokens + t] * colsT[c_j * tokens + t]} for the flat slots
     * {@code slots[j] = r_j * cols + c_j}, on the common fork-join pool.
     */
    static void compute(float[] rowsT, float[] colsT, int tokens, long[] slots, int cols, float[] out) {
        int tasks = (slots.length + SLOTS_PER_TASK - 1) / SLOTS_PER_TASK;
        IntStream.range(0, tasks).parallel().forEach(task -> {
            int to = Math.min(slots.length, (task + 1) * SLOTS_PER_TASK);
            for (int j = task * SLOTS_PER_TASK; j < to; j++) {
                int rowFrom = (int) (slots[j] / cols) * tokens;
                int colFrom = (int) (slots[j] % cols) * tokens;
                out[j] = VECTORIZED ? VectorSlotDots.dot(rowsT, rowFrom, colsT, colFrom, tokens)
                        : dot(rowsT, rowFrom, colsT, colFrom, tokens);
            }
        });
    }

    /** One dot product in the order of the class comment, without the vector module. */
    static float dot(float[] a, int aFrom, float[] b, int bFrom, int n) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        float s8 = 0, s9 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0, s14 = 0, s15 = 0;
        int t = 0;
        for (; t + 16 <= n; t += 16) {
            int i = aFrom + t;
            int k = bFrom + t;
            s0 = Math.fma(a[i], b[k], s0);
            s1 = Math.fma(a[i + 1], b[k + 1], s1);
            s2 = Math.fma(a[i + 2], b[k + 2], s2);
            s3 = Math.fma(a[i + 3], b[k + 3], s3);
            s4 = Math.fma(a[i + 4], b[k + 4], s4);
            s5 = Math.fma(a[i + 5], b[k + 5], s5);
            s6 = Math.fma(a[i + 6], b[k + 6], s6);
            s7 = Math.fma(a[i + 7], b[k + 7], s7);
            s8 = Math.fma(a[i + 8], b[k + 8], s8);
            s9 = Math.fma(a[i + 9], b[k + 9], s9);
            s10 = Math.fma(a[i + 10], b[k + 10], s10);
            s11 = Math.fma(a[i + 11], b[k + 11], s11);
            s12 = Math.fma(a[i + 12], b[k + 12], s12);
            s13 = Math.fma(a[i + 13], b[k + 13], s13);
            s14 = Math.fma(a[i + 14], b[k + 14], s14);
            s15 = Math.fma(a[i + 15], b[k + 15], s15);
        }
        float s = (((s0 + s8) + (s1 + s9)) + ((s2 + s10) + (s3 + s11)))
                + (((s4 + s12) + (s5 + s13)) + ((s6 + s14) + (s7 + s15)));
        return tail(a, aFrom, b, bFrom, t, n, s);
    }

    /** The products of tokens {@code from..n-1} fused into {@code s} one by one. */
    static float tail(float[] a, int aFrom, float[] b, int bFrom, int from, int n, float s) {
        for (int t = from; t < n; t++) {
            s = Math.fma(a[aFrom + t], b[bFrom + t], s);
        }
        return s;
    }
}
