package dev.spiel4j.eval;

/**
 * How the model scored one question.
 *
 * @param id                 the question's {@code file:line}
 * @param gold               index of the correct choice
 * @param logLikelihoods     per choice, the summed log-probability (nats) of its continuation tokens
 * @param continuationTokens per choice, how many tokens were scored
 * @param continuationBytes  per choice, the UTF-8 length of its continuation text (the length normaliser)
 */
public record Prediction(String id, int gold, double[] logLikelihoods, int[] continuationTokens,
                         int[] continuationBytes) {

    public Prediction {
        logLikelihoods = logLikelihoods.clone();
        continuationTokens = continuationTokens.clone();
        continuationBytes = continuationBytes.clone();
        if (continuationTokens.length != logLikelihoods.length || continuationBytes.length != logLikelihoods.length) {
            throw new IllegalArgumentException(id + ": one log-likelihood, token count and byte count per choice");
        }
    }

    @Override
    public double[] logLikelihoods() {
        return logLikelihoods.clone();
    }

    @Override
    public int[] continuationTokens() {
        return continuationTokens.clone();
    }

    @Override
    public int[] continuationBytes() {
        return continuationBytes.clone();
    }

    /** The choice with the highest summed log-likelihood (the first of equals). */
    public int predicted() {
        return argMax(logLikelihoods, null);
    }

    /** The choice with the highest log-likelihood per UTF-8 byte of its text (lm-evaluation-harness's acc_norm). */
    public int predictedNormalized() {
        return argMax(logLikelihoods, continuationBytes);
    }

    public boolean correct() {
        return predicted() == gold;
    }

    public boolean correctNormalized() {
        return predictedNormalized() == gold;
    }

    private static int argMax(double[] values, int[] divisors) {
        int best = 0;
        double bestValue = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < values.length; i++) {
            double v = divisors == null ? values[i] : values[i] / divisors[i];
            if (v > bestValue) {
                best = i;
                bestValue = v;
            }
        }
        return best;
    }
}
