package dev.spiel4j.eval;

import java.util.List;

/**
 * The predictions for a list of questions and the accuracies they give.
 *
 * <p>{@link #accuracy()} is the number to report (it is what goes into evaluation events): it compares the summed
 * log-likelihoods of the choices, which for MMLU's single-letter choices is the only sensible rule.
 * {@link #normalizedAccuracy()} divides each choice's log-likelihood by its length in UTF-8 bytes first, as
 * lm-evaluation-harness's {@code acc_norm}; it matters for ARC, whose answers differ in length and where the sum
 * favours short answers.
 */
public record MultipleChoiceResult(List<Prediction> predictions) {

    public MultipleChoiceResult {
        predictions = List.copyOf(predictions);
    }

    public int size() {
        return predictions.size();
    }

    /** Fraction predicted right by summed log-likelihood; NaN for no questions. */
    public double accuracy() {
        return predictions.stream().mapToDouble(p -> p.correct() ? 1 : 0).average().orElse(Double.NaN);
    }

    /** Fraction predicted right by log-likelihood per byte; NaN for no questions. */
    public double normalizedAccuracy() {
        return predictions.stream().mapToDouble(p -> p.correctNormalized() ? 1 : 0).average().orElse(Double.NaN);
    }
}
