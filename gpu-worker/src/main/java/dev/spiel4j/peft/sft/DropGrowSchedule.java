package dev.spiel4j.peft.sft;

/**
 * When SpIEL reselects its indices and how many it replaces. Update steps are numbered {@code t = 1..T}.
 *
 * <ul>
 *   <li>Reselections happen after the optimizer update of steps {@code t = gamma + m*S} (m = 0, 1, ...), and only
 *       while {@code t < T}: a reselection at or after the last step would zero trained deltas with nothing left to
 *       train their replacements. The first one comes after a single phase, as in the paper's Eq. 8, so the random
 *       initial indices are replaced as early as possible.</li>
 *   <li>The selection phase of the reselection at step t is exactly the {@code gamma} steps {@code t-gamma+1 .. t}
 *       (no off-by-one: each phase starts at a step {@code m*S + 1}).</li>
 *   <li>Fraction replaced: 1 at the first reselection (random initial indices carry no information), then
 *       {@code xi * (1 - t/T)} (linear) or {@code xi/2 * (1 + cos(pi t/T))} (cosine). Per matrix
 *       {@code n = floor(k * fraction)}.</li>
 * </ul>
 *
 * @param totalSteps T
 * @param interval   S, steps between reselections
 * @param phase      gamma, length of the gradient-estimation phase ({@code 1 <= gamma <= S})
 * @param peakRate   xi
 * @param kind       how the fraction decays
 */
public record DropGrowSchedule(int totalSteps, int interval, int phase, double peakRate, Kind kind) {

    /** Decay of the replacement fraction over training. */
    public enum Kind { LINEAR, COSINE }

    public static final int DEFAULT_INTERVAL = 20;
    public static final int DEFAULT_PHASE = 5;
    public static final double DEFAULT_PEAK_RATE = 0.2;

    public DropGrowSchedule {
        if (totalSteps < 1 || interval < 1 || phase < 1 || phase > interval) {
            throw new IllegalArgumentException("drop/grow schedule needs T >= 1 and 1 <= gamma <= S; got T=" + totalSteps
                    + " S=" + interval + " gamma=" + phase);
        }
        if (!(peakRate >= 0 && peakRate <= 1) || kind == null) {
            throw new IllegalArgumentException("drop/grow schedule needs 0 <= xi <= 1 and a kind; got xi=" + peakRate
                    + " kind=" + kind);
        }
    }

    /** The paper's defaults (S=20, gamma=5, xi=0.2, linear) for T steps. */
    public static DropGrowSchedule defaults(int totalSteps) {
        return new DropGrowSchedule(totalSteps, DEFAULT_INTERVAL, DEFAULT_PHASE, DEFAULT_PEAK_RATE, Kind.LINEAR);
    }

    /** Whether indices are reselected after the update of step t. */
    public boolean isReselection(int t) {
        return t >= phase && t < totalSteps && (t - phase) % interval == 0;
    }

    /** Whether step t belongs to the selection phase of some reselection. */
    public boolean isPhaseStep(int t) {
        return t >= 1 && nextReselection(t) - t < phase;
    }

    /** Whether step t is the first step of a selection phase (dense gradient, candidates picked). */
    public boolean isPhaseStart(int t) {
        return isPhaseStep(t) && (t - 1) % interval == 0;
    }

    /** The first reselection at or after step t, or {@code Integer.MAX_VALUE} if none. */
    public int nextReselection(int t) {
        int r = t <= phase ? phase : phase + ((t - phase + interval - 1) / interval) * interval;
        return r < totalSteps ? r : Integer.MAX_VALUE;
    }

    /** Fraction of each matrix's slots replaced at reselection step t (which must be a reselection). */
    public double fraction(int t) {
        if (!isReselection(t)) {
            throw new IllegalArgumentException("step " + t + " is not a reselection step of " + this);
        }
        if (t == phase) {
            return 1.0;
        }
        double progress = (double) t / totalSteps;
        return switch (kind) {
            case LINEAR -> peakRate * (1 - progress);
            case COSINE -> peakRate / 2 * (1 + Math.cos(Math.PI * progress));
        };
    }

    /** Slots to replace in a matrix with k slots at reselection step t. */
    public int replacements(int k, int t) {
        // The epsilon keeps exact products such as 100 * 0.15 = 14.999999999999998 from flooring one too low.
        return (int) Math.floor(k * fraction(t) + 1e-9);
    }
}
