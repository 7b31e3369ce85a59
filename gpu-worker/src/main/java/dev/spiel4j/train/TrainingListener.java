package dev.spiel4j.train;

import java.io.PrintStream;
import java.util.Locale;

/** Receives the progress of a {@link TrainingRun} after every optimizer step. */
@FunctionalInterface
public interface TrainingListener {

    /**
     * Progress after step {@code step} of {@code totalSteps}.
     *
     * @param loss            the step's mean training loss over its loss tokens
     * @param lr              the learning rate the step used
     * @param gradNorm        the global gradient norm before clipping
     * @param tokensPerSecond real (non-padding) tokens processed per second, over the run so far
     * @param etaSeconds      estimated time to the last step at the run's average pace
     * @param reselected      whether a sparse method dropped and regrew indices at this step
     */
    record Progress(int step, int totalSteps, double loss, float lr, double gradNorm, double tokensPerSecond,
                    double etaSeconds, boolean reselected) {
    }

    void onStep(Progress progress);

    /** Ignores progress. */
    TrainingListener SILENT = p -> { };

    /** One line on {@code out} every {@code every} steps and at the last step. */
    static TrainingListener printing(PrintStream out, int every) {
        if (every < 1) {
            throw new IllegalArgumentException("print interval must be >= 1, got " + every);
        }
        return p -> {
            if (p.step() % every == 0 || p.step() == p.totalSteps()) {
                out.println(String.format(Locale.ROOT,
                        "step %d/%d  loss %.4f  lr %.2e  grad-norm %.3f  %.0f tok/s  eta %.0fs%s", p.step(),
                        p.totalSteps(), p.loss(), p.lr(), p.gradNorm(), p.tokensPerSecond(), p.etaSeconds(),
                        p.reselected() ? "  (reselected)" : ""));
            }
        };
    }

    /** The default: a line on stderr every {@code every} steps (stdout stays free for results). */
    static TrainingListener stderr(int every) {
        return printing(System.err, every);
    }
}
