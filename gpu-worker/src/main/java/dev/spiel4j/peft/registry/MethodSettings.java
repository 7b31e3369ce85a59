package dev.spiel4j.peft.registry;

import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.sft.DropGrowSchedule;

import java.util.List;
import java.util.Optional;

/**
 * What a run's configuration says about its method, whichever method it names: the service's settings file, the
 * command line and the benchmark all fill this in, and each method's registration takes the part its config uses
 * (the role of the keyword arguments a PEFT config is built from).
 *
 * @param budget        the sparse methods' total number of deltas (empty for the others)
 * @param targets       block-linear short names, e.g. {@code self_attn.q_proj} (SpIEL and LoRA)
 * @param loraRank      LoRA's rank r
 * @param loraAlpha     LoRA's scaling numerator
 * @param loraDropout   LoRA's input dropout
 * @param interval      SpIEL's reselection interval S
 * @param phase         SpIEL's selection-phase length gamma
 * @param peakRate      SpIEL's initial replacement rate xi
 * @param scheduleKind  SpIEL's replacement-fraction decay
 * @param optimizer     the optimizer's settings
 * @param seed          seed of the method's random choices
 */
public record MethodSettings(Optional<Budget> budget, List<String> targets, int loraRank, float loraAlpha,
                             float loraDropout, int interval, int phase, double peakRate,
                             DropGrowSchedule.Kind scheduleKind, OptimizerSettings optimizer, long seed) {

    public MethodSettings {
        targets = List.copyOf(targets);
    }

    /**
     * Every block linear, LoRA rank 8 / alpha 16 / dropout 0.1, the paper's SpIEL schedule, the optimizer's defaults,
     * seed 0, and the given budget (null: none).
     */
    public static MethodSettings defaults(Budget budget) {
        return new MethodSettings(Optional.ofNullable(budget), ModuleNames.BLOCK_LINEARS, 8, 16f, 0.1f,
                DropGrowSchedule.DEFAULT_INTERVAL, DropGrowSchedule.DEFAULT_PHASE, DropGrowSchedule.DEFAULT_PEAK_RATE,
                DropGrowSchedule.Kind.LINEAR, OptimizerSettings.DEFAULTS, 0L);
    }

    public MethodSettings withLora(int rank, float alpha, float dropout) {
        return new MethodSettings(budget, targets, rank, alpha, dropout, interval, phase, peakRate, scheduleKind,
                optimizer, seed);
    }

    public MethodSettings withOptimizer(OptimizerSettings settings) {
        return new MethodSettings(budget, targets, loraRank, loraAlpha, loraDropout, interval, phase, peakRate,
                scheduleKind, settings, seed);
    }

    public MethodSettings withSeed(long newSeed) {
        return new MethodSettings(budget, targets, loraRank, loraAlpha, loraDropout, interval, phase, peakRate,
                scheduleKind, optimizer, newSeed);
    }
}
