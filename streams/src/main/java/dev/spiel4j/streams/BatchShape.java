package dev.spiel4j.streams;

/**
 * How batches are cut: {@code batchSize} examples per batch (the last batch of a finite source may be smaller),
 * rows padded to {@code seqLen} positions, or to the longest row of each batch when {@code seqLen} is 0.
 */
public record BatchShape(int batchSize, int seqLen) {
    public BatchShape {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be >= 1, is " + batchSize);
        }
        if (seqLen < 0) {
            throw new IllegalArgumentException("seqLen must be >= 0 (0 = longest row), is " + seqLen);
        }
    }
}
