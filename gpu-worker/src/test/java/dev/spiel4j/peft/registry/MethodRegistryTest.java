package dev.spiel4j.peft.registry;

import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.full.FullConfig;
import dev.spiel4j.peft.ia3.Ia3Config;
import dev.spiel4j.peft.lora.LoraConfig;
import dev.spiel4j.peft.sft.DropGrowSchedule;
import dev.spiel4j.peft.sft.SpielConfig;
import dev.spiel4j.train.TinyLm;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MethodRegistryTest {
    private static final OptimizerSettings OPTIMIZER = new OptimizerSettings(0.01f, 0.8f, 0.99f, 1e-6f);
    private static final MethodSettings SETTINGS = new MethodSettings(Optional.of(new Budget.Count(30)),
            List.of("mlp.up_proj", "mlp.down_proj"), 4, 8f, 0.05f, 6, 2, 0.3, DropGrowSchedule.Kind.COSINE, OPTIMIZER,
            17L);

    @Test
    void everyMethodIsRegisteredAndBuildsItsOwnConfigFromTheSettings() {
        assertEquals(List.of("spiel-ag", "spiel-ma", "lora", "ia3", "full"), MethodRegistry.names());
        assertEquals(new SpielConfig(SpielConfig.Growth.ACCUMULATED_GRADIENT, new Budget.Count(30),
                List.of("mlp.up_proj", "mlp.down_proj"), 6, 2, 0.3, DropGrowSchedule.Kind.COSINE, 1.0, OPTIMIZER, 17L),
                MethodRegistry.config("spiel-ag", SETTINGS));
        assertEquals(SpielConfig.Growth.MOMENTUM_APPROXIMATION,
                ((SpielConfig) MethodRegistry.config("spiel-ma", SETTINGS)).growth());
        assertEquals(new LoraConfig(4, 8f, 0.05f, List.of("mlp.up_proj", "mlp.down_proj"), OPTIMIZER, 17L),
                MethodRegistry.config("lora", SETTINGS));
        assertEquals(new Ia3Config(OPTIMIZER), MethodRegistry.config("ia3", SETTINGS));
        assertEquals(new FullConfig(OPTIMIZER), MethodRegistry.config("full", SETTINGS));
        for (String name : MethodRegistry.names()) {
            MethodConfig config = MethodRegistry.config(name, SETTINGS);
            assertEquals(name, config.name(), "a config reports the name it is registered under");
            assertEquals(config instanceof SpielConfig, MethodRegistry.get(name).writesDeltas(), name);
        }
    }

    @Test
    void eachConfigCreatesItsMethodUnderItsName() {
        for (String name : MethodRegistry.names()) {
            try (TinyLm model = new TinyLm(16, 8, 12, 1);
                 FineTuningMethod method = MethodRegistry.config(name, SETTINGS).create(model, 10)) {
                assertEquals(name, method.name());
                assertTrue(method.trainableParameters() > 0, name);
            }
        }
    }

    @Test
    void unknownTakenAndIncompleteAreRefusedWithTheReason() {
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> MethodRegistry.get("dora"));
        assertTrue(unknown.getMessage().contains("'dora'") && unknown.getMessage().contains("spiel-ag"),
                unknown.getMessage());
        IllegalArgumentException taken = assertThrows(IllegalArgumentException.class,
                () -> MethodRegistry.register(new MethodRegistry.Registration("lora", false,
                        s -> new Ia3Config(s.optimizer()))));
        assertTrue(taken.getMessage().contains("'lora'"), taken.getMessage());
        assertInstanceOf(LoraConfig.class, MethodRegistry.config("lora", SETTINGS), "the first registration stays");
        NullPointerException noBudget = assertThrows(NullPointerException.class,
                () -> MethodRegistry.config("spiel-ag", MethodSettings.defaults(null)));
        assertTrue(noBudget.getMessage().contains("spiel-ag needs a budget"), noBudget.getMessage());
    }
}
