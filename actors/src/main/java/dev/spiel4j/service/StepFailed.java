package dev.spiel4j.service;

import java.util.List;

/**
 * The trainer failed while training a step: thrown by the {@link TrainerActor} with the step and the ids of its
 * examples (their source positions, {@link dev.spiel4j.data.Batch#exampleIds()}), so that the
 * {@link RunSupervisor}, which receives it as the cause of the trainer's failure, can say what failed where.
 */
final class StepFailed extends RuntimeException {
    private final int step;
    private final List<String> exampleIds;

    public StepFailed(int step, List<String> exampleIds, Throwable cause) {
        super("step " + step + " (examples " + exampleIds + "): " + describe(cause), cause);
        this.step = step;
        this.exampleIds = List.copyOf(exampleIds);
    }

    public int step() {
        return step;
    }

    public List<String> exampleIds() {
        return exampleIds;
    }

    /** An exception as one line: its message, after its type unless the type adds nothing to the message. */
    static String describe(Throwable e) {
        boolean selfExplaining = e instanceof IllegalStateException || e instanceof IllegalArgumentException
                || e instanceof StepFailed || e instanceof FailureInjection.InjectedFailure;
        return selfExplaining && e.getMessage() != null ? e.getMessage()
                : e.getClass().getSimpleName() + ": " + e.getMessage();
    }
}
