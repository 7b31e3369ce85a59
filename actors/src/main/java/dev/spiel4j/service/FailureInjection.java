package dev.spiel4j.service;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import dev.spiel4j.config.RunSettings;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Debug hook for testing recovery ({@code spiel4j.debug.fail-at-steps}): makes the trainer throw right before
 * listed steps. One instance is shared by every incarnation of a run's trainer, so each entry fails once, in
 * order: {@code [7]} fails once before step 7; {@code [3, 2, 4]} fails before step 3, then (in the restarted
 * trainer) before step 2, then before step 4. An entry waits until a trainer reaches its step, and the entries
 * after it wait with it.
 */
final class FailureInjection {
    /** The setting: a list of steps; [] = never. */
    public static final String KEY = RunSettings.ROOT + ".debug.fail-at-steps";

    /** Injects nothing. */
    public static final FailureInjection NONE = new FailureInjection(List.of());

    /** Thrown before a listed step. */
    public static final class InjectedFailure extends RuntimeException {
        InjectedFailure(int step) {
            super("injected failure before step " + step + " (" + KEY + ")");
        }
    }

    private final List<Integer> steps;
    private final AtomicInteger next = new AtomicInteger();

    private FailureInjection(List<Integer> steps) {
        this.steps = List.copyOf(steps);
    }

    /** Reads {@link #KEY} from a run's resolved configuration. */
    public static FailureInjection from(Config config) {
        List<Integer> steps = config.getIntList(KEY);
        for (int step : steps) {
            if (step < 1) {
                throw new ConfigException.BadValue(config.getValue(KEY).origin(), KEY,
                        steps + " must list steps >= 1");
            }
        }
        return steps.isEmpty() ? NONE : new FailureInjection(steps);
    }

    /** Throws {@link InjectedFailure} if {@code step} is the next listed step, which is then used up. */
    void beforeStep(int step) {
        int i = next.get();
        if (i < steps.size() && steps.get(i) == step && next.compareAndSet(i, i + 1)) {
            throw new InjectedFailure(step);
        }
    }
}
