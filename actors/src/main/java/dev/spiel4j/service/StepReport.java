package dev.spiel4j.service;

import java.util.List;

/**
 * One completed optimizer step, as the trainer reports it.
 *
 * @param step         the step number (1-based)
 * @param totalSteps   steps of the run; {@link Integer#MAX_VALUE} when unbounded
 * @param loss         mean loss over the step's loss tokens
 * @param learningRate the rate the step used
 * @param gradNorm     gradient norm before clipping
 * @param tokens       loss tokens of the step
 * @param seconds      wall-clock time of the step
 * @param exampleIds   ids of the examples trained on in this step, in batch order
 * @param reselected   whether SpIEL reselected its parameters after this step
 */
public record StepReport(int step, int totalSteps, double loss, double learningRate, double gradNorm, long tokens,
                         double seconds, List<String> exampleIds, boolean reselected) {
    public StepReport {
        exampleIds = List.copyOf(exampleIds);
    }

    public double tokensPerSecond() {
        return seconds > 0 ? tokens / seconds : 0;
    }
}
