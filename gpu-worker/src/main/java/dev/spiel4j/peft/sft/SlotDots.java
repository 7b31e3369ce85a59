package dev.spiel4j.peft.sft;

import java.util.stream.IntStream;

/**
 * Dot products over the tokens, one per slot, between rows of {@code dY^T} and of {@code X^T} held on the host: the
 * inner loop of {@link HostSlotGradient}.
 *
 * <p>Each dot product is summed by one thread in one fixed order (sixteen running sums over the tokens
 * {@code t = l (mod 16)} of the full groups of sixteen, added in a fixed tree, then the remaining tokens one by one),
 * so the result does not depend on the thread count. Plain multiplies and adds: Java rounds each, on every CPU, and the
 * sixteen independent sums keep the CPU's floating-point units busy (about 9 GFLOP/s on this project's 2 cores).
 */
final class SlotDots {
    /** Slots per parallel task: enough work per task to amortize its scheduling. */
    private static final int SLOTS_PER_TASK = 2048;

    private SlotDots() {
    }

    /**
     * {@code out[j] = sum_t rowsT[r_j * tokens + t] * colsT[c_j * tokens + t]} for the first {@code k} flat slots
     * {@code slots[j] = r_j * cols + c_j}, on the common fork-join pool.
     */
    static void compute(float[] rowsT, float[] colsT, int tokens, long[] slots, int k, int cols, float[] out) {
        int tasks = (k + SLOTS_PER_TASK - 1) / SLOTS_PER_TASK;
        IntStream.range(0, tasks).parallel().forEach(task -> {
            int to = Math.min(k, (task + 1) * SLOTS_PER_TASK);
            for (int j = task * SLOTS_PER_TASK; j < to; j++) {
                out[j] = dot(rowsT, (int) (slots[j] / cols) * tokens, colsT, (int) (slots[j] % cols) * tokens, tokens);
            }
        });
    }

    private static float dot(float[] a, int aFrom, float[] b, int bFrom, int n) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        float s8 = 0, s9 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0, s14 = 0, s15 = 0;
        int t = 0;
        for (; t + 16 <= n; t += 16) {
            int i = aFrom + t;
            int k = bFrom + t;
            s0 += a[i] * b[k];
            s1 += a[i + 1] * b[k + 1];
            s2 += a[i + 2] * b[k + 2];
            s3 += a[i + 3] * b[k + 3];
            s4 += a[i + 4] * b[k + 4];
            s5 += a[i + 5] * b[k + 5];
            s6 += a[i + 6] * b[k + 6];
            s7 += a[i + 7] * b[k + 7];
            s8 += a[i + 8] * b[k + 8];
            s9 += a[i + 9] * b[k + 9];
            s10 += a[i + 10] * b[k + 10];
            s11 += a[i + 11] * b[k + 11];
            s12 += a[i + 12] * b[k + 12];
            s13 += a[i + 13] * b[k + 13];
            s14 += a[i + 14] * b[k + 14];
            s15 += a[i + 15] * b[k + 15];
        }
        float s = (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)))
                + (((s8 + s9) + (s10 + s11)) + ((s12 + s13) + (s14 + s15)));
        for (; t < n; t++) {
            s += a[aFrom + t] * b[bFrom + t];
        }
        return s;
    }
}
