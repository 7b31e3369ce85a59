package dev.spiel4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.tokenizer.Tokenizer;

/**
 * Mean next-token negative log-likelihood of a text, by the procedure of the golden values (golden/README.md):
 * take the first {@code maxChars} characters, replace every blank line "\n\n" with "\n", encode as one stream
 * without BOS, cut the first {@code maxChunks * seqLen} ids into consecutive chunks of {@code seqLen}, prefix each
 * with BOS and average the NLL of all chunk tokens. {@code maxChars 12000, seqLen 511, maxChunks 10} on
 * stories260K gives 1.3182.
 */
public final class LossScorer {
    /** Chunks per forward pass: bounds the [batch, seqLen, vocab] logits. */
    private static final int BATCH = 4;

    private LossScorer() {
    }

    /** @param meanNll nats per token; @param tokens how many tokens were scored */
    public record Score(double meanNll, long tokens) {
    }

    /**
     * @param maxChars  characters (code points) of {@code text} to use; 0 or less for all
     * @param maxChunks chunks to score at most; 0 or less for every full chunk
     */
    public static Score score(LlamaModel model, Tokenizer tokenizer, String text, int seqLen, int maxChars,
                              int maxChunks, LinearLayers linears) {
        if (seqLen < 1 || seqLen + 1 > model.config().contextLength()) {
            throw new IllegalArgumentException("seqLen " + seqLen + " must be in [1, context length - 1 = "
                    + (model.config().contextLength() - 1) + "]");
        }
        String used = maxChars > 0 && text.codePointCount(0, text.length()) > maxChars
                ? text.substring(0, text.offsetByCodePoints(0, maxChars)) : text;
        int[] ids = tokenizer.encode(used.replace("\n\n", "\n"));
        int chunks = ids.length / seqLen;
        if (maxChunks > 0) {
            chunks = Math.min(chunks, maxChunks);
        }
        if (chunks == 0) {
            throw new IllegalArgumentException("text encodes to " + ids.length + " tokens, fewer than one chunk of "
                    + seqLen);
        }
        double total = 0;
        for (int first = 0; first < chunks; first += BATCH) {
            int rows = Math.min(BATCH, chunks - first);
            long[] inputs = new long[rows * seqLen];
            long[] targets = new long[rows * seqLen];
            for (int r = 0; r < rows; r++) {
                int start = (first + r) * seqLen;
                inputs[r * seqLen] = tokenizer.bosId();
                for (int i = 0; i < seqLen; i++) {
                    targets[r * seqLen + i] = ids[start + i];
                    if (i + 1 < seqLen) {
                        inputs[r * seqLen + i + 1] = ids[start + i];
                    }
                }
            }
            try (NDManager scope = model.manager().newSubManager()) {
                Shape shape = new Shape(rows, seqLen);
                NDArray logits = model.forward(scope, EngineArrays.of(scope, inputs, shape), null, linears);
                total += tokenNll(logits, EngineArrays.of(scope, targets, shape)).sum().getFloat();
            }
        }
        return new Score(total / ((long) chunks * seqLen), (long) chunks * seqLen);
    }

    /**
     * Per-token negative log-likelihood.
     *
     * @param logits  [B, T, V] float32
     * @param targets [B, T] int64, in the same manager as {@code logits} or as a plain argument
     * @return [B, T], attached to the logits' manager
     */
    public static NDArray tokenNll(NDArray logits, NDArray targets) {
        return logits.logSoftmax(-1).gather(targets.expandDims(-1), -1).squeeze(-1).neg();
    }
}
