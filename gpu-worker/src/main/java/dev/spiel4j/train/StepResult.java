package dev.spiel4j.train;

/**
 * Outcome of one optimizer step.
 *
 * @param loss       mean cross-entropy over the step's loss tokens (all micro-batches together)
 * @param lossTokens number of loss tokens in the step
 * @param gradNorm   global L2 norm of the trainable gradients before clipping; not finite when the step's update
 *                   was skipped
 * @param seconds    wall-clock time of the step
 * @param reselected whether the method changed which parameters it trains (SpIEL drop/grow)
 */
public record StepResult(double loss, long lossTokens, double gradNorm, double seconds, boolean reselected) {

    /** Whether the update was skipped because a gradient was not finite (the trained values did not change). */
    public boolean skipped() {
        return !Double.isFinite(gradNorm);
    }
}
