package dev.spiel4j.peft.ia3;

import dev.spiel4j.model.CausalLm;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.TargetMatrix;

import java.util.Objects;

/**
 * (IA)3's settings: it always attaches to the key, value and down projections ({@link Ia3#TARGETS}).
 *
 * @param optimizer AdamW's settings
 */
public record Ia3Config(OptimizerSettings optimizer) implements MethodConfig {
    public static final String NAME = "ia3";

    public Ia3Config {
        Objects.requireNonNull(optimizer, "optimizer");
    }

    public static Ia3Config defaults() {
        return new Ia3Config(OptimizerSettings.DEFAULTS);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public FineTuningMethod create(CausalLm model, int totalSteps) {
        return new Ia3(this, TargetMatrix.resolve(model.parameterShapes(), Ia3.TARGETS), model.manager());
    }
}
