package dev.spiel4j.cli.internal.observe;

import com.google.protobuf.Timestamp;
import dev.spiel4j.proto.v1.KafkaOutage;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.RunEvent;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Optional;

import static dev.spiel4j.cli.internal.observe.Telemetry.step;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The watcher's lines and ETA, without Kafka. */
class WatchLinesTest {

    private static Metrics at(long step, long total, long second) {
        return step("r", step, total, 1.0).toBuilder()
                .setTime(Timestamp.newBuilder().setSeconds(Telemetry.T0 + second)).build();
    }

    @Test
    void etaFollowsThePaceAndStartsOverWhenARestartReplaysSteps() {
        RunWatcher.EtaEstimator eta = new RunWatcher.EtaEstimator();
        assertEquals(Optional.of(Duration.ofMillis(2250)), eta.eta(at(1, 10, 0)));   // 9 x the step's 0.25 s
        assertEquals(Optional.of(Duration.ofSeconds(16)), eta.eta(at(2, 10, 2)));    // 2 s per step, 8 left
        assertEquals(Optional.of(Duration.ofSeconds(14)), eta.eta(at(3, 10, 4)));
        assertEquals(Optional.of(Duration.ofMillis(2000)), eta.eta(at(2, 10, 30)));  // replayed: 8 x 0.25 s
        assertEquals(Optional.of(Duration.ofSeconds(35)), eta.eta(at(3, 10, 35)));   // 5 s per step since
        assertEquals(Optional.of(Duration.ZERO), eta.eta(at(10, 10, 40)));
    }

    @Test
    void aRunWithoutAnEndHasNoEta() {
        assertEquals("step 5  loss 1.0000  lr 1.00e-04  grad 0.500  5000 tok/s",
                RunWatcher.stepLine(step("r", 5, 0, 1.0), Optional.empty()));
        assertEquals("step 5/9  loss 1.0000  lr 1.00e-04  grad 0.500  5000 tok/s  ETA ?",
                RunWatcher.stepLine(step("r", 5, 9, 1.0), Optional.empty()));
        assertEquals("1:02:05", RunWatcher.clock(Duration.ofSeconds(3725)));
    }

    @Test
    void outageLines() {
        RunEvent down = RunEvent.newBuilder().setRunId("r").setOutage(KafkaOutage.newBuilder().setOngoing(true)
                .setSince(Telemetry.at(0)).setBufferedRecords(12).setCause("connection refused")).build();
        assertEquals("Kafka unreachable since 2023-11-14T22:13:20Z: 12 records buffered (connection refused)",
                RunWatcher.eventLine(down));
        assertEquals("Kafka reachable again", RunWatcher.eventLine(RunEvent.newBuilder().setRunId("r")
                .setOutage(KafkaOutage.newBuilder().setOngoing(false)).build()));
    }
}
