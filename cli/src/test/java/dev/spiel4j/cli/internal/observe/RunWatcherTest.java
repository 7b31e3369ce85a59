package dev.spiel4j.cli.internal.observe;

import org.junit.jupiter.api.Tag;
import dev.spiel4j.kafka.EmbeddedKafka;
import dev.spiel4j.kafka.ProducerSettings;
import dev.spiel4j.kafka.ProtoPublisher;
import dev.spiel4j.kafka.ServiceProducer;
import dev.spiel4j.kafka.TopicAdmin;
import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static dev.spiel4j.cli.internal.observe.Telemetry.buckets;
import static dev.spiel4j.cli.internal.observe.Telemetry.step;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The watcher and the Kafka source of reports against an embedded broker. */
@Tag("kafka")
class RunWatcherTest {
    private static EmbeddedKafka kafka;
    private static Topics topics;
    private static ServiceProducer producer;
    private static ProtoPublisher<Metrics> metrics;
    private static ProtoPublisher<RunEvent> events;

    /** The finished run "done": its messages in publication order. */
    private static final List<Object> DONE = List.of(
            Telemetry.status("done", RunStatus.State.STARTED, 0, ""),
            step("done", 1, 4, 3.0),
            step("done", 2, 4, 2.5),
            Telemetry.selection("done", 2, buckets(90, 10)),
            Telemetry.accuracy("done", 2, "arc.jsonl", 0.3),
            step("done", 3, 4, 2.0).toBuilder().setEvalLoss(2.25).build(),
            Telemetry.checkpoint("done", 3),
            Telemetry.status("done", RunStatus.State.COMPLETED, 3, "ok"));

    @BeforeAll
    static void start() throws Exception {
        kafka = EmbeddedKafka.start();
        topics = Topics.withPrefix("watch.");
        ProducerSettings settings = ProducerSettings.defaults(kafka.bootstrapServers(), "watch-test");
        TopicAdmin.ensureTopics(kafka.bootstrapServers(), topics, 2, (short) 1, settings.maxRecordBytes());
        producer = new ServiceProducer(settings);
        metrics = ProtoPublisher.metrics(producer, topics);
        events = ProtoPublisher.events(producer, topics);
        publish(step("other", 1, 9, 7.0));
        for (Object message : DONE) {
            publish(message);
        }
        publish(Telemetry.status("other", RunStatus.State.COMPLETED, 1, ""));
        producer.send(topics.metrics(), "garbage".getBytes(StandardCharsets.UTF_8), new byte[]{0x0F})
                .get(30, TimeUnit.SECONDS);
    }

    @AfterAll
    static void stop() {
        producer.close();
        kafka.close();
    }

    private static void publish(Object message) throws Exception {
        CompletableFuture<?> sent = message instanceof Metrics m ? metrics.publish(m) : events.publish((RunEvent) message);
        sent.get(30, TimeUnit.SECONDS);
    }

    private static List<String> lines(ByteArrayOutputStream bytes) {
        return bytes.toString(StandardCharsets.UTF_8).lines().toList();
    }

    @Test
    void replaysAFinishedRunAndStopsAtItsEnd() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        RunWatcher.Outcome outcome = new RunWatcher(kafka.bootstrapServers(), topics,
                new PrintStream(bytes, true, StandardCharsets.UTF_8)).watch("done", true, Duration.ofSeconds(20));
        assertEquals(new RunWatcher.Outcome(RunWatcher.End.FINISHED, Optional.of(RunStatus.State.COMPLETED), 3, 5),
                outcome);
        // The two topics interleave freely; within each the order is the run's.
        List<String> expected = List.of(
                "STARTED at step 0",
                // step 1: no pace measured yet, so the step's own 0.25 s x 3 steps left
                "step 1/4  loss 3.0000  lr 1.00e-04  grad 0.500  5000 tok/s  ETA 0:00:00",
                // then the timestamps, one second apart: 2 and 1 steps left
                "step 2/4  loss 2.5000  lr 1.00e-04  grad 0.500  5000 tok/s  ETA 0:00:02",
                "step 2 reselection: dropped 10, grown 10, active 100 in 2 modules (fraction 0.200)",
                "step 2 eval arc.jsonl: accuracy 0.3000 on 40 examples (1.5 s)",
                "step 3/4  loss 2.0000  lr 1.00e-04  grad 0.500  5000 tok/s  eval_loss 2.2500  ETA 0:00:01",
                "step 3 checkpoint step-000003 (12345 bytes) checkpoints/step-000003",
                "COMPLETED at step 3: ok");
        List<String> printed = lines(bytes);
        assertEquals(expected.stream().sorted().toList(), printed.stream().sorted().toList());
        assertEquals(expected.stream().filter(l -> l.startsWith("step ") && l.contains("loss")).toList(),
                printed.stream().filter(l -> l.startsWith("step ") && l.contains("loss")).toList());
    }

    @Test
    void followsARunLiveUntilItCompletes() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        CompletableFuture<RunWatcher.Outcome> watching = CompletableFuture.supplyAsync(() ->
                new RunWatcher(kafka.bootstrapServers(), topics, out).watch("live", true, Duration.ofSeconds(20)));
        publish(step("live", 1, 2, 1.5));
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (lines(bytes).isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertEquals(List.of("step 1/2  loss 1.5000  lr 1.00e-04  grad 0.500  5000 tok/s  ETA 0:00:00"), lines(bytes),
                "the first step is printed while the run goes on");
        assertFalse(watching.isDone());
        publish(step("live", 2, 2, 1.25));
        publish(Telemetry.status("live", RunStatus.State.FAILED, 2, "out of memory"));
        RunWatcher.Outcome outcome = watching.get(20, TimeUnit.SECONDS);
        assertEquals(RunWatcher.End.FINISHED, outcome.end());
        assertEquals(Optional.of(RunStatus.State.FAILED), outcome.finalState());
        assertTrue(lines(bytes).contains("FAILED at step 2: out of memory"), lines(bytes).toString());
    }

    @Test
    void watchingEveryRunPrefixesLinesAndEndsAtTheTimeout() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        RunWatcher.Outcome outcome = new RunWatcher(kafka.bootstrapServers(), topics,
                new PrintStream(bytes, true, StandardCharsets.UTF_8)).watch(null, true, Duration.ofSeconds(3));
        assertEquals(RunWatcher.End.TIMED_OUT, outcome.end());
        List<String> printed = lines(bytes);
        assertTrue(printed.contains("[done] COMPLETED at step 3: ok"), printed.toString());
        assertTrue(printed.contains("[other] step 1/9  loss 7.0000  lr 1.00e-04  grad 0.500  5000 tok/s  "
                + "ETA 0:00:02"), printed.toString());
        assertTrue(printed.stream().anyMatch(l -> l.startsWith("[garbage] skipped watch.metrics/")
                && l.contains("not a spiel4j.v1 Metrics message")), printed.toString());
    }

    @Test
    void anUnknownRunTimesOutSilently() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        RunWatcher.Outcome outcome = new RunWatcher(kafka.bootstrapServers(), topics,
                new PrintStream(bytes, true, StandardCharsets.UTF_8)).watch("nobody", true, Duration.ofSeconds(1));
        assertEquals(new RunWatcher.Outcome(RunWatcher.End.TIMED_OUT, Optional.empty(), 0, 0), outcome);
        assertEquals(List.of(), lines(bytes));
    }

    @Test
    void topicsThatDoNotExistEndTheWatchAtTheTimeoutWithANote() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        long start = System.nanoTime();
        RunWatcher.Outcome outcome = new RunWatcher(kafka.bootstrapServers(), Topics.withPrefix("absent."),
                new PrintStream(bytes, true, StandardCharsets.UTF_8)).watch("done", true, Duration.ofSeconds(1));
        assertEquals(RunWatcher.End.TIMED_OUT, outcome.end());
        assertTrue(Duration.ofNanos(System.nanoTime() - start).compareTo(Duration.ofSeconds(5)) < 0);
        assertEquals(List.of("topics 'absent.metrics' and 'absent.events' do not exist on " + kafka.bootstrapServers()
                + " (no run has started there)"), lines(bytes));
    }

    /** The same messages give the same history whether they come from the topics or from the run directory. */
    @Test
    void historyFromKafkaEqualsHistoryFromTheRunLog(@TempDir Path dir) throws IOException {
        try (RunLog log = RunLog.open(dir, false)) {
            for (Object message : DONE) {
                if (message instanceof Metrics m) {
                    log.append(m);
                } else {
                    log.append((RunEvent) message);
                }
            }
        }
        RunHistory fromFiles = RunHistory.read(dir);
        RunHistory fromKafka = RunHistory.fromKafka(kafka.bootstrapServers(), topics, "done", Duration.ofSeconds(20));
        assertEquals(fromFiles, fromKafka);
        assertEquals(3, fromKafka.steps().size());
        assertEquals("COMPLETED", fromKafka.lastStatus().orElseThrow().state());
    }
}
