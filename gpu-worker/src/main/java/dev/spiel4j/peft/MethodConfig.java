package dev.spiel4j.peft;

import dev.spiel4j.model.CausalLm;

/**
 * A fine-tuning method's settings, one record per method (PEFT's {@code PeftConfig}): {@code SpielConfig},
 * {@code LoraConfig}, {@code Ia3Config}, {@code FullConfig}. The registry in {@code dev.spiel4j.peft.registry} maps
 * each method's name to the code that builds its config from a run's settings.
 */
public interface MethodConfig {

    /** The method's registered name ({@code spiel-ag}, {@code lora}, ...): what checkpoints and exports record. */
    String name();

    /** Instantiates the method for {@code model}, trained for {@code totalSteps} update steps. */
    FineTuningMethod create(CausalLm model, int totalSteps);
}
