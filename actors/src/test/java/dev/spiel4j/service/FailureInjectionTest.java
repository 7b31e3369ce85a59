package dev.spiel4j.service;

import com.typesafe.config.ConfigException;
import dev.spiel4j.config.RunSettings;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FailureInjectionTest {

    private static FailureInjection of(String steps) {
        return FailureInjection.from(RunSettings.load(null, List.of("debug.fail-at-steps=" + steps)));
    }

    @Test
    void eachListedStepFailsOnceInOrder() {
        FailureInjection f = of("[3, 2, 3]");
        assertDoesNotThrow(() -> f.beforeStep(1));
        assertDoesNotThrow(() -> f.beforeStep(2), "step 2 waits for the entry before it");
        assertThrows(FailureInjection.InjectedFailure.class, () -> f.beforeStep(3));
        // the restarted trainer goes back to step 1
        assertDoesNotThrow(() -> f.beforeStep(1));
        assertThrows(FailureInjection.InjectedFailure.class, () -> f.beforeStep(2));
        assertDoesNotThrow(() -> f.beforeStep(1));
        assertDoesNotThrow(() -> f.beforeStep(2));
        FailureInjection.InjectedFailure last = assertThrows(FailureInjection.InjectedFailure.class,
                () -> f.beforeStep(3));
        assertTrue(last.getMessage().contains("before step 3 (spiel4j.debug.fail-at-steps)"), last.getMessage());
        for (int step = 1; step <= 5; step++) {
            int t = step;
            assertDoesNotThrow(() -> f.beforeStep(t), "every entry is used up");
        }
    }

    @Test
    void theDefaultInjectsNothingAndStepsMustBePositive() {
        assertSame(FailureInjection.NONE, FailureInjection.from(RunSettings.load(null, List.of())));
        ConfigException e = assertThrows(ConfigException.class, () -> of("[2, 0]"));
        assertTrue(e.getMessage().contains(FailureInjection.KEY), e.getMessage());
    }
}
