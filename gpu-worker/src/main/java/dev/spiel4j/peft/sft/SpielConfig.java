package dev.spiel4j.peft.sft;

import ai.djl.ndarray.types.Shape;
import dev.spiel4j.model.CausalLm;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.TargetMatrix;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * SpIEL's settings (paper section 3): a budget of deltas over the targeted matrices, the drop/grow schedule, and the
 * growth criterion that names the variant.
 *
 * @param growth          how dropped indices are regrown: the variant
 * @param budget          total number of deltas, split over the targets at equal density
 * @param targets         block-linear short names to fine-tune, e.g. {@code self_attn.q_proj}
 * @param interval        reselection interval S
 * @param phase           SpIEL-AG's selection-phase length gamma (SpIEL-MA reselects after the same steps)
 * @param peakRate        initial replacement rate xi
 * @param scheduleKind    decay of the replacement fraction
 * @param candidateFactor SpIEL-AG's candidates per matrix as a multiple of its k (the paper uses 1)
 * @param optimizer       the deltas' optimizer settings (AdamW for SpIEL-AG, SM3 for SpIEL-MA)
 * @param seed            seed of the initial random indices
 */
public record SpielConfig(Growth growth, Budget budget, List<String> targets, int interval, int phase,
                          double peakRate, DropGrowSchedule.Kind scheduleKind, double candidateFactor,
                          OptimizerSettings optimizer, long seed) implements MethodConfig {

    /** The growth criterion, which names the variant. */
    public enum Growth {
        /** SpIEL-AG: grow where the gradient accumulated over a selection phase is largest; deltas train with AdamW. */
        ACCUMULATED_GRADIENT("spiel-ag"),
        /** SpIEL-MA: grow where SM3's approximation of the gradient's momentum is largest; deltas train with SM3. */
        MOMENTUM_APPROXIMATION("spiel-ma");

        private final String method;

        Growth(String method) {
            this.method = method;
        }

        /** The variant's registered name. */
        public String methodName() {
            return method;
        }
    }

    public SpielConfig {
        Objects.requireNonNull(growth, "growth");
        Objects.requireNonNull(budget, () -> growth.method + " needs a budget (density, count or LoRA rank)");
        Objects.requireNonNull(scheduleKind, "scheduleKind");
        Objects.requireNonNull(optimizer, "optimizer");
        targets = List.copyOf(targets);
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("no target modules given");
        }
        if (!(candidateFactor > 0)) {
            throw new IllegalArgumentException("candidate factor must be positive, got " + candidateFactor);
        }
        // the schedule's own checks, for any run length, before a model is loaded
        new DropGrowSchedule(1, interval, phase, peakRate, scheduleKind);
    }

    /** SpIEL-AG with the paper's schedule (S=20, gamma=5, xi=0.2, linear) on every block linear. */
    public static SpielConfig ag(Budget budget) {
        return defaults(Growth.ACCUMULATED_GRADIENT, budget);
    }

    /** SpIEL-MA with the paper's schedule on every block linear. */
    public static SpielConfig ma(Budget budget) {
        return defaults(Growth.MOMENTUM_APPROXIMATION, budget);
    }

    private static SpielConfig defaults(Growth growth, Budget budget) {
        return new SpielConfig(growth, budget, ModuleNames.BLOCK_LINEARS, DropGrowSchedule.DEFAULT_INTERVAL,
                DropGrowSchedule.DEFAULT_PHASE, DropGrowSchedule.DEFAULT_PEAK_RATE, DropGrowSchedule.Kind.LINEAR, 1.0,
                OptimizerSettings.DEFAULTS, 0L);
    }

    public SpielConfig withSchedule(int s, int gamma, double xi, DropGrowSchedule.Kind kind) {
        return new SpielConfig(growth, budget, targets, s, gamma, xi, kind, candidateFactor, optimizer, seed);
    }

    public SpielConfig withTargets(List<String> shortNames) {
        return new SpielConfig(growth, budget, shortNames, interval, phase, peakRate, scheduleKind, candidateFactor,
                optimizer, seed);
    }

    public SpielConfig withOptimizer(OptimizerSettings settings) {
        return new SpielConfig(growth, budget, targets, interval, phase, peakRate, scheduleKind, candidateFactor,
                settings, seed);
    }

    public SpielConfig withSeed(long newSeed) {
        return new SpielConfig(growth, budget, targets, interval, phase, peakRate, scheduleKind, candidateFactor,
                optimizer, newSeed);
    }

    @Override
    public String name() {
        return growth.method;
    }

    /** The drop/grow schedule for a run of {@code totalSteps} update steps. */
    public DropGrowSchedule schedule(int totalSteps) {
        return new DropGrowSchedule(totalSteps, interval, phase, peakRate, scheduleKind);
    }

    @Override
    public FineTuningMethod create(CausalLm model, int totalSteps) {
        Map<String, Shape> shapes = model.parameterShapes();
        long parameters = shapes.values().stream().mapToLong(Shape::size).sum();
        return new SpielMethod(this, TargetMatrix.resolve(shapes, targets), parameters, totalSteps, model.weights(),
                model.manager());
    }
}
