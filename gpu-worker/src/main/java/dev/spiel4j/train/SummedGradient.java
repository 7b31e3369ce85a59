package dev.spiel4j.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * All micro-batches' gradients of one update step summed in micro-batch order ({@link #of}): what every replica of a
 * data-parallel run applies with {@link Trainer#applyStep}, O(trained values) in size whatever the number of
 * micro-batches.
 *
 * @param nllSum     the step's summed negative log-likelihood
 * @param lossTokens the step's loss tokens
 * @param shapes     each gradient's shape
 * @param values     each summed gradient, float32, row-major
 * @param statistics the micro-batches' {@link MicroBatchGradient#statistics()} summed the same way
 * @param choices    micro-batch 0's {@link MicroBatchGradient#choices()}
 */
public record SummedGradient(double nllSum, long lossTokens, List<long[]> shapes, List<float[]> values,
                             List<float[]> statistics, List<long[]> choices) {

    public SummedGradient {
        if (shapes.size() != values.size()) {
            throw new IllegalArgumentException(shapes.size() + " shapes for " + values.size() + " gradients");
        }
        if (lossTokens <= 0) {
            throw new IllegalArgumentException("the step's micro-batches have no loss tokens");
        }
        shapes = List.copyOf(shapes);
        values = List.copyOf(values);
        statistics = List.copyOf(statistics);
        choices = List.copyOf(choices);
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
        double nll = 0;
        long tokens = 0;
        for (int i = 0; i < parts.size(); i++) {
            MicroBatchGradient part = parts.get(i);
            if (part.index() != i) {
                throw new IllegalArgumentException("part " + i + " of the step is micro-batch " + part.index());
            }
            for (int j = 0; j < first.shapes().size(); j++) {
                if (j >= part.shapes().size() || !Arrays.equals(part.shapes().get(j), first.shapes().get(j))) {
                    throw new IllegalArgumentException("gradient " + j + " of micro-batch " + i + " has shape "
                            + (j < part.shapes().size() ? Arrays.toString(part.shapes().get(j)) : "none")
                            + ", micro-batch 0's " + Arrays.toString(first.shapes().get(j)));
                }
            }
            nll += part.nllSum();
            tokens += part.lossTokens();
        }
        return new SummedGradient(nll, tokens, first.shapes(), sum(parts, MicroBatchGradient::values, "gradient"),
                sum(parts, MicroBatchGradient::statistics, "statistic"), first.choices());
    }

    /** Element-wise sums of each part's arrays, in part order: one IEEE float32 addition per value and part. */
    private static List<float[]> sum(List<MicroBatchGradient> parts, Function<MicroBatchGradient, List<float[]>> of,
                                     String what) {
        List<float[]> sums = new ArrayList<>();
        for (float[] v : of.apply(parts.get(0))) {
            sums.add(v.clone());
        }
        for (int i = 1; i < parts.size(); i++) {
            List<float[]> next = of.apply(parts.get(i));
            if (next.size() != sums.size()) {
                throw new IllegalArgumentException("micro-batch " + i + " has " + next.size() + " " + what
                        + "s, micro-batch 0 has " + sums.size());
            }
            for (int j = 0; j < sums.size(); j++) {
                float[] sum = sums.get(j);
                float[] v = next.get(j);
                if (v.length != sum.length) {
                    throw new IllegalArgumentException(what + " " + j + " of micro-batch " + i + " has " + v.length
                            + " values, micro-batch 0's " + sum.length);
                }
                for (int k = 0; k < sum.length; k++) {
                    sum[k] += v[k];
                }
            }
        }
        return sums;
    }

    /** The float values of all gradients and statistics together. */
    public long floats() {
        return values.stream().mapToLong(v -> v.length).sum() + statistics.stream().mapToLong(v -> v.length).sum();
    }
}
