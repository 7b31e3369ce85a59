package dev.spiel4j.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.model.CausalLm;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LossScorer;
import dev.spiel4j.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Multiple-choice accuracy by log-likelihood: each choice is scored as the continuation of the question's context
 * and the most likely one is the prediction (see {@link MultipleChoiceResult} for the two rules).
 *
 * <p>Tokenisation. SentencePiece-style tokenizers prepend a space to every text they encode, so a continuation
 * cannot be encoded on its own. As in lm-evaluation-harness, the context and context + continuation are encoded
 * whole; the continuation's tokens are those of the whole after its longest common prefix with the context's.
 * The model reads {@code BOS + whole}; the score of a choice is the sum of {@code log p(token | everything before)}
 * over its continuation tokens. When {@code BOS + whole} is longer than {@code maxSequenceLength} the oldest
 * context tokens are dropped (BOS is kept).
 *
 * <p>Batching. The choices of one question form one batch, right-padded to the longest with an attention mask,
 * so each question costs one forward pass; its arrays live in a sub-manager of the model's manager that is closed
 * before the next question. Only the positions that predict continuation tokens go through the softmax.
 */
public final class MultipleChoiceScorer {
    /** Any valid id does for padding: padded positions are masked out of attention and never scored. */
    private static final int PAD_ID = 0;

    private final CausalLm model;
    private final Tokenizer tokenizer;
    private final int maxSequenceLength;

    /**
     * @param maxSequenceLength longest row given to the model, BOS included (at most its context length; the
     *                          length it was trained on is the sensible choice)
     */
    public MultipleChoiceScorer(CausalLm model, Tokenizer tokenizer, int maxSequenceLength) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        if (maxSequenceLength < 2) {
            throw new IllegalArgumentException("maxSequenceLength must be at least 2 (BOS and one token), got "
                    + maxSequenceLength);
        }
        this.maxSequenceLength = maxSequenceLength;
    }

    /** Scores every question with {@code linears} (a fine-tuning method, or {@link LinearLayers#DENSE}). */
    public MultipleChoiceResult score(List<Question> questions, LinearLayers linears) {
        List<Prediction> predictions = new ArrayList<>(questions.size());
        for (Question q : questions) {
            predictions.add(score(q, linears));
        }
        return new MultipleChoiceResult(predictions);
    }

    /** Scores one question with one forward pass over its choices. */
    public Prediction score(Question question, LinearLayers linears) {
        int choices = question.continuations().size();
        long[][] rows = new long[choices][];
        int[] scored = new int[choices];
        int[] bytes = new int[choices];
        int[] context = tokenizer.encode(question.context());
        for (int c = 0; c < choices; c++) {
            String continuation = question.continuations().get(c);
            int[] whole = tokenizer.encode(question.context() + continuation);
            int shared = commonPrefix(context, whole);
            scored[c] = whole.length - shared;
            bytes[c] = continuation.getBytes(StandardCharsets.UTF_8).length;
            if (scored[c] == 0) {
                throw new IllegalArgumentException(question.id() + ": choice " + c + " adds no tokens to the context");
            }
            if (scored[c] + 1 > maxSequenceLength) {
                throw new IllegalArgumentException(question.id() + ": choice " + c + " is " + scored[c]
                        + " tokens, more than fit after BOS in maxSequenceLength " + maxSequenceLength);
            }
            int kept = Math.min(whole.length, maxSequenceLength - 1);
            long[] row = new long[kept + 1];
            row[0] = tokenizer.bosId();
            for (int i = 0; i < kept; i++) {
                row[i + 1] = whole[whole.length - kept + i];
            }
            rows[c] = row;
        }
        return new Prediction(question.id(), question.gold(), logLikelihoods(rows, scored, linears), scored, bytes);
    }

    /**
     * Summed log-probability of the last {@code scored[r]} tokens of each row, from one batched forward pass.
     * Position t's logits predict token t + 1, so row r's scores come from positions
     * {@code [length - scored - 1, length - 2]}; the window {@code [first, last]} covers them for all rows.
     */
    private double[] logLikelihoods(long[][] rows, int[] scored, LinearLayers linears) {
        int batch = rows.length;
        int width = Arrays.stream(rows).mapToInt(r -> r.length).max().orElseThrow();
        int first = Integer.MAX_VALUE;
        int last = 0;
        for (int r = 0; r < batch; r++) {
            first = Math.min(first, rows[r].length - scored[r] - 1);
            last = Math.max(last, rows[r].length - 2);
        }
        int window = last - first + 1;
        long[] tokens = new long[batch * width];
        float[] mask = new float[batch * width];
        long[] targets = new long[batch * window];
        float[] weights = new float[batch * window];
        boolean padded = false;
        for (int r = 0; r < batch; r++) {
            long[] row = rows[r];
            Arrays.fill(tokens, r * width, (r + 1) * width, PAD_ID);
            System.arraycopy(row, 0, tokens, r * width, row.length);
            Arrays.fill(mask, r * width, r * width + row.length, 1f);
            padded |= row.length < width;
            for (int t = row.length - scored[r] - 1; t <= row.length - 2; t++) {
                targets[r * window + t - first] = row[t + 1];
                weights[r * window + t - first] = 1f;
            }
        }
        try (NDManager scope = model.manager().newSubManager()) {
            Shape shape = new Shape(batch, width);
            NDArray logits = model.forward(scope, EngineArrays.of(scope, tokens, shape),
                    padded ? EngineArrays.of(scope, mask, shape) : null, linears);
            NDArray windowLogits = logits.get(new NDIndex(":, {}:{}", first, last + 1));
            Shape windowShape = new Shape(batch, window);
            NDArray nll = LossScorer.tokenNll(windowLogits, EngineArrays.of(scope, targets, windowShape));
            float[] sums = nll.mul(EngineArrays.of(scope, weights, windowShape)).sum(new int[]{1}).toFloatArray();
            double[] out = new double[batch];
            for (int r = 0; r < batch; r++) {
                out[r] = -sums[r];
            }
            return out;
        }
    }

    private static int commonPrefix(int[] a, int[] b) {
        int n = Math.min(a.length, b.length);
        int i = 0;
        while (i < n && a[i] == b[i]) {
            i++;
        }
        return i;
    }
}
