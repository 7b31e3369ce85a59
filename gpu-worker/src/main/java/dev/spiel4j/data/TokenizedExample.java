package dev.spiel4j.data;

import java.util.Objects;

/**
 * An example as token ids: {@code BOS, prompt..., response..., EOS}. Token {@code i} counts towards the loss
 * (is a training target, predicted from the tokens before it) exactly when {@code i >= responseStart}.
 *
 * @param id            the example id (a {@code #k} suffix marks the k-th chunk of a split text)
 * @param tokens        the whole sequence, at least two tokens (BOS and one target)
 * @param responseStart index of the first token under the loss mask, in {@code [1, tokens.length)}
 */
public record TokenizedExample(String id, int[] tokens, int responseStart) implements Encoded {
    public TokenizedExample {
        Objects.requireNonNull(id, "id");
        if (tokens.length < 2) {
            throw new IllegalArgumentException("example " + id + " needs at least 2 tokens, has " + tokens.length);
        }
        if (responseStart < 1 || responseStart >= tokens.length) {
            throw new IllegalArgumentException("example " + id + ": responseStart " + responseStart
                    + " outside [1, " + tokens.length + ")");
        }
    }

    /** Number of training positions (inputs) this example fills: one less than its tokens. */
    public int positions() {
        return tokens.length - 1;
    }

    /** Number of targets under the loss mask. */
    public int lossTokens() {
        return tokens.length - responseStart;
    }
}
