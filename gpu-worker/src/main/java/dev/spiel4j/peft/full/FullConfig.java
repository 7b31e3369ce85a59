package dev.spiel4j.peft.full;

import dev.spiel4j.model.CausalLm;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodConfig;

import java.util.Objects;

/**
 * Full fine-tuning's settings: every weight trains.
 *
 * @param optimizer AdamW's settings
 */
public record FullConfig(OptimizerSettings optimizer) implements MethodConfig {
    public static final String NAME = "full";

    public FullConfig {
        Objects.requireNonNull(optimizer, "optimizer");
    }

    public static FullConfig defaults() {
        return new FullConfig(OptimizerSettings.DEFAULTS);
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public FineTuningMethod create(CausalLm model, int totalSteps) {
        if (!model.weights().keySet().equals(model.parameterShapes().keySet())) {
            throw new IllegalArgumentException("full fine-tuning needs every weight held densely; the model holds only "
                    + model.weights().size() + " of its " + model.parameterShapes().size() + " weights so");
        }
        return new FullFineTuning(this, model.weights(), model.manager());
    }
}
