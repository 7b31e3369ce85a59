package dev.spiel4j.cli.internal.observe;

import dev.spiel4j.proto.v1.AgeBucket;
import dev.spiel4j.proto.v1.KafkaOutage;
import dev.spiel4j.proto.v1.WorkerLost;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;

import static dev.spiel4j.cli.internal.observe.Telemetry.buckets;
import static dev.spiel4j.cli.internal.observe.Telemetry.step;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** RunLog writes what RunHistory reads back, through resumes, torn lines and bad lines. */
class RunLogTest {
    @TempDir
    Path dir;

    @Test
    void everyKindOfRecordRoundTrips() {
        try (RunLog log = RunLog.open(dir, true)) {
            log.append(Telemetry.status("r1", RunStatus.State.STARTED, 0, ""));
            log.append(step("r1", 1, 4, 3.0));
            log.append(step("r1", 2, 4, 2.5).toBuilder().setEvalLoss(2.75).build());
            log.append(Telemetry.selection("r1", 2, buckets(90, 10)));
            log.append(Telemetry.accuracy("r1", 2, "arc.jsonl", 0.3));
            log.append(Telemetry.evalLoss("r1", 2, "held-out", 2.75));
            log.append(Telemetry.checkpoint("r1", 2));
            log.append(RunEvent.newBuilder().setRunId("r1").setOutage(KafkaOutage.newBuilder().setOngoing(true)
                    .setBufferedRecords(3).setCause("broker down")).build());
            log.append(RunEvent.newBuilder().setRunId("r1").setWorkerLost(WorkerLost.newBuilder()
                    .setWorker("pekko://spiel4j@10.0.0.2:25520/user/gradient-worker").setReason("left the cluster")
                    .setWorkersLeft(1)).build());
            log.append(Telemetry.status("r1", RunStatus.State.COMPLETED, 2, "done"));
        }
        RunHistory h = RunHistory.read(dir);
        assertEquals("r1", h.runId());
        assertEquals(List.of(
                new RunHistory.Step(1, 4, 3.0, 1e-4, 5000, 0.5, 0.25, OptionalDouble.empty(),
                        Optional.of(Instant.ofEpochSecond(Telemetry.T0 + 1))),
                new RunHistory.Step(2, 4, 2.5, 1e-4, 5000, 0.5, 0.25, OptionalDouble.of(2.75),
                        Optional.of(Instant.ofEpochSecond(Telemetry.T0 + 2)))), h.steps());
        assertEquals(List.of(new RunHistory.Selection(2, 0.2, 2, 10, 10, 100, List.of(0L, 10L, 20L),
                List.of(90L, 10L))), h.selections());
        assertEquals(List.of(
                new RunHistory.Evaluation(2, "arc.jsonl", OptionalDouble.empty(), OptionalDouble.of(0.3), 40),
                new RunHistory.Evaluation(2, "held-out", OptionalDouble.of(2.75), OptionalDouble.empty(), 16)),
                h.evaluations());
        assertEquals(List.of(new RunHistory.Checkpoint(2, "step-000002", "checkpoints/step-000002", 12345)),
                h.checkpoints());
        assertEquals(List.of(new RunHistory.Status(0, "STARTED", ""), new RunHistory.Status(2, "COMPLETED", "done")),
                h.statuses());
        assertEquals(1, h.outages());
        assertEquals(1, h.workersLost());
    }

    @Test
    void aResumedRunKeepsTheLastReportOfEachStep() {
        try (RunLog log = RunLog.open(dir, false)) {
            for (int s = 1; s <= 4; s++) {
                log.append(step("r1", s, 5, 10 - s));
            }
        }
        try (RunLog log = RunLog.open(dir, false)) {
            for (int s = 3; s <= 5; s++) {
                log.append(step("r1", s, 5, 100 + s));
            }
        }
        assertEquals(List.of(9.0, 8.0, 103.0, 104.0, 105.0),
                RunHistory.read(dir).steps().stream().map(RunHistory.Step::loss).toList());
    }

    @Test
    void aTornLastLineIsIgnoredByReadersAndRemovedOnReopen() throws IOException {
        try (RunLog log = RunLog.open(dir, false)) {
            log.append(step("r1", 1, 3, 2.0));
            log.append(step("r1", 2, 3, 1.5));
        }
        Path metrics = dir.resolve(RunLog.METRICS_FILE);
        Files.writeString(metrics, "{\"run_id\":\"r1\",\"step\":3,\"lo", StandardOpenOption.APPEND);
        assertEquals(2, RunHistory.read(dir).steps().size());
        try (RunLog log = RunLog.open(dir, false)) {
            log.append(step("r1", 3, 3, 1.25));
        }
        assertEquals(List.of(2.0, 1.5, 1.25), RunHistory.read(dir).steps().stream().map(RunHistory.Step::loss).toList());
        assertEquals(3, Files.readAllLines(metrics).size());
    }

    @Test
    void aDivergedLossSurvivesTheRoundTrip() {
        try (RunLog log = RunLog.open(dir, false)) {
            log.append(step("r1", 1, 2, Double.NaN));
            log.append(step("r1", 2, 2, Double.POSITIVE_INFINITY));
        }
        List<RunHistory.Step> steps = RunHistory.read(dir).steps();
        assertTrue(Double.isNaN(steps.get(0).loss()));
        assertEquals(Double.POSITIVE_INFINITY, steps.get(1).loss());
    }

    /** A complete metrics line. */
    private static final String STEP_ONE = "{\"run_id\":\"r1\",\"step\":1,\"total_steps\":2,\"loss\":1,\"lr\":1,"
            + "\"tokens_per_s\":1,\"grad_norm\":1,\"step_s\":1}";

    private void assertRefused(String file, String line, String expected) throws IOException {
        Files.writeString(dir.resolve(RunLog.METRICS_FILE), STEP_ONE + "\n");
        Files.writeString(dir.resolve(RunLog.EVENTS_FILE), "");
        Files.writeString(dir.resolve(file), line + "\n", StandardOpenOption.APPEND);
        var e = assertThrows(IllegalArgumentException.class, () -> RunHistory.read(dir));
        assertTrue(e.getMessage().startsWith(file + ":") && e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void badLinesAreRefusedNamingFileAndLine() throws IOException {
        assertRefused(RunLog.METRICS_FILE, "{\"step\":2,", "metrics.jsonl:2: not valid JSON");
        assertRefused(RunLog.METRICS_FILE, "{\"run_id\":\"r1\",\"step\":2,\"total_steps\":2,\"loss\":\"low\"}",
                "field 'loss' must be a number");
        assertRefused(RunLog.METRICS_FILE, "{\"run_id\":\"r2\",\"step\":2}", "run_id 'r2' differs from 'r1'");
        assertRefused(RunLog.EVENTS_FILE, "{\"run_id\":\"r1\",\"step\":2}", "events.jsonl:1: field 'type'");
        assertRefused(RunLog.EVENTS_FILE, "{\"type\":\"selection\",\"step\":2,\"age_histogram\":"
                + "{\"bucket_edges\":[0,10],\"counts\":[1,2]}}", "needs one edge more than counts");
        assertRefused(RunLog.EVENTS_FILE, "{\"type\":\"selection\",\"step\":2,\"age_histogram\":"
                + "{\"bucket_edges\":[0,10,5],\"counts\":[1,2]}}", "bucket_edges must increase");
        var notRun = assertThrows(IllegalArgumentException.class, () -> RunHistory.read(dir.resolve("nothing")));
        assertTrue(notRun.getMessage().contains("has no metrics.jsonl"), notRun.getMessage());
    }

    @Test
    void aMissingOrMistypedFieldIsRefusedNamingItsPathInTheLine() throws IOException {
        assertRefused(RunLog.METRICS_FILE, STEP_ONE.replace("\"total_steps\":2,", ""),
                "metrics.jsonl:2: field 'total_steps' is missing; it must be an integer");
        assertRefused(RunLog.METRICS_FILE, STEP_ONE.replace("\"total_steps\":2", "\"total_steps\":2.5"),
                "metrics.jsonl:2: field 'total_steps' must be an integer, got 2.5");
        assertRefused(RunLog.METRICS_FILE, STEP_ONE.replace("}", ",\"time\":\"yesterday\"}"),
                "metrics.jsonl:2: field 'time' must be an ISO-8601 instant, got \"yesterday\"");
        assertRefused(RunLog.EVENTS_FILE, "{\"type\":\"eval\",\"step\":2,\"dataset\":7,\"examples\":1}",
                "events.jsonl:1: field 'dataset' must be a string, got 7");
        assertRefused(RunLog.EVENTS_FILE,
                "{\"type\":\"checkpoint\",\"step\":2,\"checkpoint_id\":null,\"bytes\":1}",
                "events.jsonl:1: field 'checkpoint_id' must be a string, got null");
        assertRefused(RunLog.EVENTS_FILE, "{\"type\":\"selection\",\"step\":2,\"modules\":[{\"dropped\":1,\"grown\":1}]}",
                "events.jsonl:1: field 'modules[0].active' is missing; it must be an integer");
        assertRefused(RunLog.EVENTS_FILE, "{\"type\":\"selection\",\"step\":2,\"age_histogram\":"
                + "{\"bucket_edges\":[0,10,20],\"counts\":[1,null]}}",
                "events.jsonl:1: field 'age_histogram.counts[1]' must be an integer, got null");
    }

    @Test
    void fieldsANewerWriterAddsAreIgnored() throws IOException {
        Files.writeString(dir.resolve(RunLog.METRICS_FILE), STEP_ONE.replace("}", ",\"from_the_future\":[1]}\n"));
        Files.writeString(dir.resolve(RunLog.EVENTS_FILE),
                "{\"type\":\"status\",\"run_id\":\"r1\",\"state\":\"STARTED\",\"step\":0,\"host\":{\"name\":\"a\"}}\n");
        RunHistory h = RunHistory.read(dir);
        assertEquals(1, h.steps().size());
        assertEquals(List.of(new RunHistory.Status(0, "STARTED", "")), h.statuses());
    }

    @Test
    void unknownEventTypesAreSkipped() throws IOException {
        try (RunLog log = RunLog.open(dir, false)) {
            log.append(step("r1", 1, 2, 2.0));
        }
        Files.writeString(dir.resolve(RunLog.EVENTS_FILE), "{\"type\":\"from-the-future\",\"run_id\":\"r1\"}\n");
        assertEquals(1, RunHistory.read(dir).steps().size());
    }

    @Test
    void aGapBetweenBucketsBecomesAnEmptyBucketAndOverlapsAreRefused() throws Exception {
        List<AgeBucket> gap = List.of(AgeBucket.newBuilder().setMinAge(0).setMaxAge(10).setCount(1).build(),
                AgeBucket.newBuilder().setMinAge(20).setMaxAge(30).setCount(2).build());
        List<AgeBucket> overlap = List.of(AgeBucket.newBuilder().setMinAge(0).setMaxAge(10).setCount(1).build(),
                AgeBucket.newBuilder().setMinAge(5).setMaxAge(30).setCount(1).build());
        try (RunLog log = RunLog.open(dir, false)) {
            log.append(Telemetry.selection("r1", 5, gap));
            var e = assertThrows(IllegalArgumentException.class,
                    () -> log.append(Telemetry.selection("r1", 6, overlap)));
            assertTrue(e.getMessage().contains("age bucket 1 [5, 30)"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> log.append(RunEvent.newBuilder().setRunId("r1").build()));
        }
        var selection = RunHistory.read(dir).selections().get(0);
        assertEquals(List.of(0L, 10L, 20L, 30L), selection.bucketEdges());
        assertEquals(List.of(1L, 0L, 2L), selection.counts());
    }
}
