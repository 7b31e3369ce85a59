package dev.spiel4j.data;

import java.util.List;

/**
 * One micro-batch for causal-LM training, host side, row-major {@code [size, seqLen]}.
 *
 * @param inputs        token ids fed to the model (padded with 0 after each row's tokens)
 * @param targets       the next token for each input position
 * @param lossMask      1 where the target counts towards the loss (response tokens), else 0
 * @param attentionMask 1 for real tokens, 0 for padding
 * @param exampleIds    the id of the example in each row (data positions, for exactly-once accounting)
 */
public record Batch(int size, int seqLen, long[] inputs, long[] targets, float[] lossMask, float[] attentionMask,
                    List<String> exampleIds) {

    public Batch {
        int n = Math.multiplyExact(size, seqLen);
        if (inputs.length != n || targets.length != n || lossMask.length != n || attentionMask.length != n) {
            throw new IllegalArgumentException("batch arrays must all hold size*seqLen = " + n + " elements");
        }
        if (exampleIds.size() != size) {
            throw new IllegalArgumentException("batch of " + size + " rows has " + exampleIds.size() + " example ids");
        }
        exampleIds = List.copyOf(exampleIds);
    }

    /** Number of positions whose loss counts. */
    public long lossTokens() {
        long n = 0;
        for (float m : lossMask) {
            n += m > 0 ? 1 : 0;
        }
        return n;
    }
}
