package dev.spiel4j.data;

import java.util.ArrayList;
import java.util.List;

/** Pads tokenized examples into a {@link Batch}. */
public final class Batches {
    private Batches() {
    }

    /** Token id written into padded positions (masked out by both masks). */
    public static final int PAD_ID = 0;

    /**
     * One row per example: {@code inputs = tokens[0..n-2]}, {@code targets = tokens[1..n-1]}, the loss mask set
     * where the target is a response token (or the EOS), the attention mask on every real position; rows padded
     * with {@link #PAD_ID} and zero masks.
     *
     * @param seqLen the row length, or 0 for the longest example's positions
     */
    public static Batch pad(List<TokenizedExample> examples, int seqLen) {
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("cannot build a batch from no examples");
        }
        int longest = examples.stream().mapToInt(TokenizedExample::positions).max().orElseThrow();
        if (seqLen < 0) {
            throw new IllegalArgumentException("seqLen must be >= 0 (0 = longest row), is " + seqLen);
        }
        int len = seqLen == 0 ? longest : seqLen;
        if (longest > len) {
            TokenizedExample e = examples.stream().filter(x -> x.positions() == longest).findFirst().orElseThrow();
            throw new IllegalArgumentException("example " + e.id() + " has " + longest
                    + " positions, more than the batch's seqLen " + len);
        }
        int size = examples.size();
        long[] inputs = new long[size * len];
        long[] targets = new long[size * len];
        float[] lossMask = new float[size * len];
        float[] attention = new float[size * len];
        List<String> ids = new ArrayList<>(size);
        for (int row = 0; row < size; row++) {
            TokenizedExample e = examples.get(row);
            int[] tokens = e.tokens();
            int base = row * len;
            for (int t = 0; t < e.positions(); t++) {
                inputs[base + t] = tokens[t];
                targets[base + t] = tokens[t + 1];
                lossMask[base + t] = t + 1 >= e.responseStart() ? 1f : 0f;
                attention[base + t] = 1f;
            }
            ids.add(e.id());
        }
        return new Batch(size, len, inputs, targets, lossMask, attention, ids);
    }
}
