package dev.spiel4j.service;

import java.util.function.Consumer;
import java.time.Duration;

/**
 * Told what a run does while it runs (the command line prints it; tests record it). Called from the run's
 * supervisor actor: implementations must return quickly and must not block.
 */
public interface ProgressListener {

    /** A step completed. */
    default void onStep(StepReport step) {
    }

    /** The held-out data was scored after {@code step}. */
    default void onEvaluation(int step, double loss) {
    }

    /** A checkpoint was written to the run directory. */
    default void onCheckpoint(SavedCheckpoint checkpoint) {
    }

    /**
     * The trainer failed; {@code message} is one line naming the step, its examples and the cause, and saying what
     * follows: a restart from the last checkpoint, or the end of the run (FAILED).
     */
    default void onTrainerFailure(String message) {
    }

    /** A failed trainer was restarted; it goes on from the checkpoint of {@code step} (0: from the beginning). */
    default void onTrainerRestart(int step) {
    }

    /**
     * A line about fetching the model or data from the Hugging Face Hub before the run starts (called from the
     * thread that starts the run, not from an actor).
     */
    default void onDownload(String line) {
    }

    ProgressListener NONE = new ProgressListener() {
    };

    /** One line per step to {@code out}: step, loss, learning rate, tokens/s and ETA; plus evaluations. */
    static ProgressListener terminal(Consumer<String> out) {
        return new ProgressListener() {
            private final long start = System.nanoTime();
            private int firstStep = -1;

            @Override
            public void onStep(StepReport s) {
                if (firstStep < 0) {
                    firstStep = s.step();
                }
                StringBuilder line = new StringBuilder(String.format("step %d%s  loss %.4f  lr %.2e  %.0f tok/s",
                        s.step(), s.totalSteps() == Integer.MAX_VALUE ? "" : "/" + s.totalSteps(), s.loss(),
                        s.learningRate(), s.tokensPerSecond()));
                int done = s.step() - firstStep + 1;
                if (s.totalSteps() != Integer.MAX_VALUE && done > 0) {
                    double perStep = (System.nanoTime() - start) / 1e9 / done;
                    Duration eta = Duration.ofSeconds(Math.round(perStep * (s.totalSteps() - s.step())));
                    line.append(String.format("  eta %dm%02ds", eta.toMinutes(), eta.toSecondsPart()));
                }
                out.accept(line.toString());
            }

            @Override
            public void onEvaluation(int step, double loss) {
                out.accept(String.format("eval after step %d: held-out loss %.4f", step, loss));
            }

            @Override
            public void onCheckpoint(SavedCheckpoint c) {
                out.accept(String.format("checkpoint %s -> %s", c.id(), c.deltaFile().getParent()));
            }

            @Override
            public void onTrainerFailure(String message) {
                out.accept(message);
            }

            @Override
            public void onDownload(String line) {
                out.accept(line);
            }

            @Override
            public void onTrainerRestart(int step) {
                out.accept("trainer restarted from "
                        + (step == 0 ? "the beginning" : "the checkpoint of step " + step));
            }
        };
    }
}
