package dev.spiel4j.train;

import java.util.List;

/**
 * One micro-batch's part of an update step, computed where its data is (a worker of a data-parallel run, see
 * {@link Trainer#gradientOf}): the gradient of every trainable tensor, in
 * {@link dev.spiel4j.peft.FineTuningMethod#gradients()}'s order, of the micro-batch's loss divided by the whole step's
 * loss tokens. Summed in micro-batch order ({@link SummedGradient#of}) the parts give bit for bit the gradient one process accumulates over the same
 * micro-batches, since that accumulation is the same float32 additions in the same order.
 *
 * @param index      the micro-batch's place in its step (LoRA's dropout masks and the sum's order depend on it)
 * @param nllSum     the micro-batch's summed negative log-likelihood
 * @param lossTokens the micro-batch's loss tokens
 * @param shapes     each gradient's shape
 * @param values     each gradient's values, float32, row-major
 * @param statistics what else the method sums over micro-batches ({@link dev.spiel4j.peft.FineTuningMethod#statistics})
 * @param choices    what micro-batch 0 chose for the others ({@link dev.spiel4j.peft.FineTuningMethod#choices}); empty
 *                   for the others
 */
public record MicroBatchGradient(int index, double nllSum, long lossTokens, List<long[]> shapes,
                                 List<float[]> values, List<float[]> statistics, List<long[]> choices) {

    public MicroBatchGradient {
        if (shapes.size() != values.size()) {
            throw new IllegalArgumentException(shapes.size() + " shapes for " + values.size() + " gradients");
        }
        shapes = List.copyOf(shapes);
        values = List.copyOf(values);
        statistics = List.copyOf(statistics);
        choices = List.copyOf(choices);
    }

    /** The float values of all gradients together (what crosses the network per micro-batch). */
    public long floats() {
        return values.stream().mapToLong(v -> v.length).sum() + statistics.stream().mapToLong(v -> v.length).sum();
    }
}
