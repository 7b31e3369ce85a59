package dev.spiel4j.peft.lora;

import dev.spiel4j.model.CausalLm;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.TargetMatrix;

import java.util.List;
import java.util.Objects;

/**
 * LoRA's settings.
 *
 * @param rank      rank r of the update {@code B A}
 * @param alpha     scaling numerator: the update is scaled by {@code alpha / r}
 * @param dropout   dropout on LoRA's input during training
 * @param targets   block-linear short names to adapt, e.g. {@code self_attn.q_proj}
 * @param optimizer AdamW's settings
 * @param seed      seed of A's initialisation and of the dropout masks
 */
public record LoraConfig(int rank, float alpha, float dropout, List<String> targets, OptimizerSettings optimizer,
                         long seed) implements MethodConfig {
    public static final String NAME = "lora";

    public LoraConfig {
        Objects.requireNonNull(optimizer, "optimizer");
        targets = List.copyOf(targets);
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("no target modules given");
        }
        if (rank < 1 || !(alpha > 0) || !(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("LoRA needs rank >= 1, alpha > 0, 0 <= dropout < 1; got rank=" + rank
                    + " alpha=" + alpha + " dropout=" + dropout);
        }
    }

    /** LoRA on every block linear, AdamW with the defaults. */
    public static LoraConfig of(int rank, float alpha, float dropout) {
        return new LoraConfig(rank, alpha, dropout, ModuleNames.BLOCK_LINEARS, OptimizerSettings.DEFAULTS, 0L);
    }

    public LoraConfig withTargets(List<String> shortNames) {
        return new LoraConfig(rank, alpha, dropout, shortNames, optimizer, seed);
    }

    public LoraConfig withOptimizer(OptimizerSettings settings) {
        return new LoraConfig(rank, alpha, dropout, targets, settings, seed);
    }

    public LoraConfig withSeed(long newSeed) {
        return new LoraConfig(rank, alpha, dropout, targets, optimizer, newSeed);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public FineTuningMethod create(CausalLm model, int totalSteps) {
        return new Lora(this, TargetMatrix.resolve(model.parameterShapes(), targets), model.manager());
    }
}
