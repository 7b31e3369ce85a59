package dev.spiel4j.bench;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChildRunnerTest {
    private static final long MIB = 1024 * 1024;

    @Test
    void readsTheLastJsonLineAndThePeak() {
        ChildRunner.Outcome o = ChildRunner.run(MinimumMemorySearchTest.allocatingChild(64), Duration.ofSeconds(30));
        assertTrue(o.succeeded(), o.failureReason());
        assertEquals(64L << 20, o.result().orElseThrow().get("len").asLong());
        assertEquals(ChildRunner.Enforcement.NONE, o.enforcement());
        assertTrue(o.polledPeakBytes() >= 64 * MIB, "polled peak " + o.polledPeakBytes());
    }

    @Test
    void capStopsAChildAboveIt() {
        for (boolean polling : new boolean[]{false, true}) {
            ChildRunner.Outcome o = ChildRunner.run(MinimumMemorySearchTest.allocatingChild(200),
                    Duration.ofSeconds(30), OptionalLong.of(100 * MIB), polling);
            assertFalse(o.succeeded());
            assertTrue(o.capExceeded(), "polling=" + polling + ": " + o.failureReason());
            if (polling) {
                assertEquals(ChildRunner.Enforcement.POLLING, o.enforcement());
            }
            assertTrue(o.failureReason().contains("memory cap"), o.failureReason());
        }
    }

    @Test
    void timeoutAndErrorsAreReported() {
        ChildRunner.Outcome slow = ChildRunner.run(List.of("sleep", "10"), Duration.ofMillis(300));
        assertTrue(slow.timedOut());
        assertTrue(slow.wallSeconds() < 5);
        assertTrue(slow.failureReason().startsWith("timed out"), slow.failureReason());

        ChildRunner.Outcome err = ChildRunner.run(List.of("python3", "-c",
                "import sys; print('noise'); print('{\"status\": \"error\", \"error\": \"bad spec\"}'); sys.exit(1)"),
                Duration.ofSeconds(30));
        assertFalse(err.succeeded());
        assertEquals("exit 1: bad spec", err.failureReason());

        ChildRunner.Outcome noJson = ChildRunner.run(List.of("sh", "-c", "echo not json; echo boom >&2; exit 3"),
                Duration.ofSeconds(30));
        assertTrue(noJson.result().isEmpty());
        assertEquals("exit 3: boom", noJson.failureReason());
    }
}
