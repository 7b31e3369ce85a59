package dev.spiel4j.peft.sft;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DropGrowScheduleTest {

    private static List<Integer> where(int total, java.util.function.IntPredicate p) {
        return IntStream.rangeClosed(1, total).filter(p).boxed().toList();
    }

    @Test
    void reselectionsAndPhasesAreExact() {
        DropGrowSchedule s = DropGrowSchedule.defaults(100);
        assertEquals(List.of(5, 25, 45, 65, 85), where(100, s::isReselection));
        assertEquals(List.of(1, 21, 41, 61, 81), where(100, s::isPhaseStart));
        List<Integer> phase = where(100, s::isPhaseStep);
        assertEquals(25, phase.size(), "five phases of exactly gamma = 5 steps");
        assertTrue(phase.containsAll(List.of(21, 22, 23, 24, 25)));
        assertFalse(phase.contains(20) || phase.contains(26));
    }

    @Test
    void firstReselectionReplacesEverythingThenDecays() {
        DropGrowSchedule lin = DropGrowSchedule.defaults(100);
        assertEquals(1.0, lin.fraction(5));
        assertEquals(0.2 * 0.75, lin.fraction(25), 1e-12);
        assertEquals(100, lin.replacements(100, 5));
        assertEquals(15, lin.replacements(100, 25), "floor(100 * 0.15) despite float rounding");
        assertEquals(1, lin.replacements(10, 25), "floor(1.5)");
        DropGrowSchedule cos = new DropGrowSchedule(100, 20, 5, 0.2, DropGrowSchedule.Kind.COSINE);
        assertEquals(0.1 * (1 + Math.cos(Math.PI / 4)), cos.fraction(25), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> lin.fraction(26));
    }

    @Test
    void noReselectionAtOrAfterTheLastStep() {
        DropGrowSchedule s = new DropGrowSchedule(85, 20, 5, 0.2, DropGrowSchedule.Kind.LINEAR);
        assertEquals(List.of(5, 25, 45, 65), where(200, s::isReselection), "85 is the last step: no reselection");
        assertFalse(s.isPhaseStep(81), "no phase for a reselection that will not happen");
        // T not a multiple of S.
        DropGrowSchedule odd = new DropGrowSchedule(53, 20, 5, 0.2, DropGrowSchedule.Kind.LINEAR);
        assertEquals(List.of(5, 25, 45), where(60, odd::isReselection));
        assertEquals(List.of(1, 21, 41), where(60, odd::isPhaseStart));
        // A run shorter than one phase never reselects.
        assertEquals(List.of(), where(10, new DropGrowSchedule(5, 20, 5, 0.2, DropGrowSchedule.Kind.LINEAR)::isReselection));
    }

    @Test
    void gammaEqualToSMakesEveryStepAPhaseStep() {
        DropGrowSchedule s = new DropGrowSchedule(30, 3, 3, 0.5, DropGrowSchedule.Kind.LINEAR);
        assertEquals(List.of(3, 6, 9, 12, 15, 18, 21, 24, 27), where(30, s::isReselection));
        assertEquals(27, where(30, s::isPhaseStep).size());
    }

    @Test
    void rejectsBadParameters() {
        assertThrows(IllegalArgumentException.class, () -> new DropGrowSchedule(10, 5, 6, 0.2, DropGrowSchedule.Kind.LINEAR));
        assertThrows(IllegalArgumentException.class, () -> new DropGrowSchedule(0, 5, 5, 0.2, DropGrowSchedule.Kind.LINEAR));
        assertThrows(IllegalArgumentException.class, () -> new DropGrowSchedule(10, 5, 5, 1.5, DropGrowSchedule.Kind.LINEAR));
    }
}
