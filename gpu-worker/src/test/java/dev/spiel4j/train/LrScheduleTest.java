package dev.spiel4j.train;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class LrScheduleTest {
    @Test
    void warmupThenLinearDecay() {
        LrSchedule s = LrSchedule.warmupLinearDecay(1f, 4, 14);
        assertEquals(0.25f, s.at(1));
        assertEquals(1f, s.at(4));
        assertEquals(1f, s.at(5), "first step after warm-up runs at the peak");
        assertEquals(0.5f, s.at(10), 1e-6f, "(14 - 10 + 1) / 10");
        assertEquals(0.1f, s.at(14), 1e-6f, "last step is not wasted at 0");
        assertThrows(IllegalArgumentException.class, () -> s.at(15));
        assertEquals(0.5f, LrSchedule.constant(0.5f).at(77));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupLinearDecay(1f, 10, 10));
    }
}
