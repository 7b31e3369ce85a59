package dev.spiel4j.train;

import java.util.Arrays;
import java.util.List;

/**
 * All micro-batches' gradients of one update step summed in micro-batch order ({@link #of}): what every replica of a
 * data-parallel run applies with {@link Trainer#applyStep}, O(trained values) in size whatever the number of
 * micro-batches.
 *
 * @param nllSum     the step's summed negative log-likelihood
 * @param lossTokens the step's loss tokens
 * @param shapes     each gradient's shape
 * @param values     each summed gradient, float32, row-major
 */
public record SummedGradient(double nllSum, long lossTokens, List<long[]> shapes, List<float[]> values) {

    public SummedGradient {
        if (shapes.size() != values.size()) {
            throw new IllegalArgumentException(shapes.size() + " shapes for " + values.size() + " gradients");
        }
        if (lossTokens <= 0) {
            throw new IllegalArgumentException("the step's micro-batches have no loss tokens");
        }
        shapes = List.copyOf(shapes);
        values = List.copyOf(values);
    }

    /**
     * The sum of {@code parts}, which must be micro-batches 0, 1, ... of one step in order: one IEEE float32 addition
     * per value and part in that order, the additions a single process's accumulation makes, so the sum is bit for bit
     * the gradient {@link Trainer#step} forms from the same micro-batches.
     */
    public static SummedGradient of(List<MicroBatchGradient> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("a step needs at least one micro-batch");
        }
        MicroBatchGradient first = parts.get(0);
        float[][] sums = new float[first.values().size()][];
        double nll = 0;
        long tokens = 0;
        for (int i = 0; i < parts.size(); i++) {
            MicroBatchGradient part = parts.get(i);
            if (part.index() != i) {
                throw new IllegalArgumentException("part " + i + " of the step is micro-batch " + part.index());
            }
            if (part.values().size() != sums.length) {
                throw new IllegalArgumentException("micro-batch " + i + " has " + part.values().size()
                        + " gradients, micro-batch 0 has " + sums.length);
            }
            nll += part.nllSum();
            tokens += part.lossTokens();
            for (int j = 0; j < sums.length; j++) {
                float[] v = part.values().get(j);
                if (i == 0) {
                    sums[j] = v.clone();
                    continue;
                }
                if (!Arrays.equals(part.shapes().get(j), first.shapes().get(j))) {
                    throw new IllegalArgumentException("gradient " + j + " of micro-batch " + i + " has shape "
                            + Arrays.toString(part.shapes().get(j)) + ", micro-batch 0's "
                            + Arrays.toString(first.shapes().get(j)));
                }
                float[] sum = sums[j];
                for (int k = 0; k < sum.length; k++) {
                    sum[k] += v[k];
                }
            }
        }
        return new SummedGradient(nll, tokens, first.shapes(), List.of(sums));
    }

    /** The float values of all gradients together. */
    public long floats() {
        return values.stream().mapToLong(v -> v.length).sum();
    }
}
