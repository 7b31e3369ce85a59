package dev.spiel4j.train;

/** Learning rate as a function of the update step {@code t = 1..T}. */
@FunctionalInterface
public interface LrSchedule {

    float at(int step);

    static LrSchedule constant(float lr) {
        if (!(lr >= 0)) {
            throw new IllegalArgumentException("learning rate must be >= 0, got " + lr);
        }
        return step -> lr;
    }

    /**
     * Linear warm-up over the first {@code warmupSteps} steps ({@code peak * t / W}), then linear decay
     * {@code peak * (T - t + 1) / (T - W)}: the first step after warm-up runs at the peak and the last step at
     * {@code peak / (T - W)}, so no step is wasted at a zero rate.
     */
    static LrSchedule warmupLinearDecay(float peak, int warmupSteps, int totalSteps) {
        if (!(peak >= 0) || warmupSteps < 0 || totalSteps < 1 || warmupSteps >= totalSteps) {
            throw new IllegalArgumentException("warm-up schedule needs peak >= 0 and 0 <= warmup < total steps; got peak="
                    + peak + " warmup=" + warmupSteps + " total=" + totalSteps);
        }
        return step -> {
            if (step < 1 || step > totalSteps) {
                throw new IllegalArgumentException("step " + step + " outside 1.." + totalSteps);
            }
            if (step <= warmupSteps) {
                return peak * step / warmupSteps;
            }
            return peak * (totalSteps - step + 1) / (totalSteps - warmupSteps);
        };
    }
}
