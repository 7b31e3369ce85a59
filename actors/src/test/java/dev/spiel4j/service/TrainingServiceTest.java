package dev.spiel4j.service;

import org.junit.jupiter.api.Tag;
import com.typesafe.config.Config;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.checkpoint.TrainingStateFile;
import dev.spiel4j.config.RunSettings;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.kafka.CheckpointPuller;
import dev.spiel4j.kafka.EmbeddedKafka;
import dev.spiel4j.kafka.PulledCheckpoint;
import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.AgeBucket;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.ModuleSelection;
import dev.spiel4j.proto.v1.PromptResponse;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import dev.spiel4j.proto.v1.SelectionEvent;
import dev.spiel4j.proto.v1.TrainingExample;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training service end to end: the real actors, the real engine on stories260K, a real (in-JVM) Kafka broker.
 * Runs are tiny (sequences of 64 tokens, batches of 2, 12 steps, a checkpoint every 4, SpIEL-AG reselecting
 * every 4 steps) so each takes seconds. The reference is one uninterrupted run; interrupted runs must train
 * every example exactly once once the replayed steps (those between the last checkpoint and a failure, trained
 * again) are de-duplicated by step, must repeat every step bit for bit (loss and gradient norm, replayed steps
 * included), and must end with the same checkpoint bit for bit: the sparse fine-tuning and the optimizer and selector
 * state ({@link CheckpointAssertions#assertSameCheckpoint}).
 */
@Tag("kafka")
class TrainingServiceTest {
    private static final int STEPS = 12;

    @TempDir
    static Path dir;
    private static EmbeddedKafka kafka;
    private static Path data;
    private static Path small;
    private static Recorder reference;
    private static RunSummary referenceSummary;

    /** What a run reported, step by step (thread-safe: the listener is called from the supervisor). */
    static final class Recorder implements ProgressListener {
        final List<StepReport> steps = new CopyOnWriteArrayList<>();
        final List<Integer> restarts = new CopyOnWriteArrayList<>();
        final List<String> failures = new CopyOnWriteArrayList<>();
        final List<Double> evals = new CopyOnWriteArrayList<>();
        volatile Consumer<StepReport> onStep = s -> { };

        @Override
        public void onStep(StepReport step) {
            steps.add(step);
            onStep.accept(step);
        }

        @Override
        public void onEvaluation(int step, double loss) {
            evals.add(loss);
        }

        @Override
        public void onTrainerFailure(String message) {
            failures.add(message);
        }

        @Override
        public void onTrainerRestart(int step) {
            restarts.add(step);
        }

        /** Example ids by step, the last report of a step winning (de-duplicates replayed steps). */
        Map<Integer, List<String>> idsByStep() {
            Map<Integer, List<String>> m = new TreeMap<>();
            steps.forEach(s -> m.put(s.step(), s.exampleIds()));
            return m;
        }
    }

    @BeforeAll
    static void start() throws IOException {
        kafka = EmbeddedKafka.start();
        // 40 usable examples and one malformed line (a dead letter); the last 4 records are held out.
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 41; i++) {
            lines.add(i == 3 ? "{\"prompt\": \"broken"
                    : "{\"prompt\":\"Question " + i + ": what comes after " + i + "?\\n\",\"response\":\"Once upon a "
                    + "time there were " + (i + 1) + " little cats who liked to play.\"}");
        }
        data = Files.write(dir.resolve("train.jsonl"), lines, StandardCharsets.UTF_8);
        small = Files.write(dir.resolve("small.jsonl"), lines.subList(5, 10), StandardCharsets.UTF_8);
        reference = new Recorder();
        referenceSummary = TrainingService.run(config("reference", List.of()), reference);
    }

    @AfterAll
    static void stop() {
        if (kafka != null) {
            kafka.close();
        }
    }

    static Config config(String runId, List<String> extra) {
        List<String> o = new ArrayList<>(List.of(
                "run.dir=\"" + dir.resolve("runs") + "\"",
                "run.id=" + runId,
                "run.seed=7",
                "model.path=\"" + SharedAssets.file("model/stories260K.gguf") + "\"",
                "data.train=\"" + data + "\"",
                "data.seq-len=64",
                "batch.size=2",
                "schedule.steps=" + STEPS,
                "schedule.warmup-fraction=0.1",
                "method.reselection-interval=4",
                "method.selection-steps=2",
                "checkpoint.interval=4",
                "checkpoint.keep=0",
                "checkpoint.chunk-size=4KiB",
                "eval.interval=6",
                "eval.holdout-examples=4",
                "eval.max-examples=4",
                "kafka.bootstrap-servers=\"" + kafka.bootstrapServers() + "\"",
                "device=cpu",
                "pekko.loglevel=WARNING"));
        o.addAll(extra);
        return RunSettings.load(null, o);
    }

    private static Path runDir(String runId) {
        return dir.resolve("runs").resolve(runId);
    }

    private static Path finalCheckpoint(String runId) {
        return runDir(runId).resolve("checkpoints").resolve(CheckpointStore.idOf(STEPS));
    }

    /**
     * Every step's loss bit for bit as in the reference, after de-duplicating replayed steps; a failure names the
     * first step that differs.
     */
    private static void assertSameLossesAsReference(Recorder run) {
        Map<Integer, Double> expected = lossByStep(reference);
        Map<Integer, Double> actual = lossByStep(run);
        assertEquals(expected.keySet(), actual.keySet(), "steps");
        expected.forEach((step, loss) -> assertEquals(Double.doubleToRawLongBits(loss),
                Double.doubleToRawLongBits(actual.get(step)), "loss of step " + step + ": the reference's " + loss
                        + ", this run's " + actual.get(step)));
    }

    private static Map<Integer, Double> lossByStep(Recorder run) {
        Map<Integer, Double> m = new TreeMap<>();
        run.steps.forEach(s -> m.put(s.step(), s.loss()));
        return m;
    }

    /** Every example id once, in the reference's order, after de-duplicating replayed steps. */
    private static void assertTrainedExactlyOnceLikeReference(Recorder run) {
        Map<Integer, List<String>> byStep = run.idsByStep();
        assertEquals(reference.idsByStep(), byStep);
        List<String> all = byStep.values().stream().flatMap(List::stream).toList();
        assertEquals(all.size(), new HashSet<>(all).size(), "an example was trained twice: " + all);
    }

    @Test
    void referenceRunTrainsEvaluatesCheckpointsAndDeadLetters() throws IOException {
        assertEquals(RunSummary.Outcome.COMPLETED, referenceSummary.outcome());
        assertEquals(STEPS, referenceSummary.steps());
        assertEquals(0, referenceSummary.trainerRestarts());
        assertEquals(1, referenceSummary.deadLetters(), "the malformed line");
        // checkpoints at 4, 8 and 12 (the last doubles as the final one)
        assertEquals(3, referenceSummary.checkpoints());
        assertEquals(List.of("step-000004", "step-000008", "step-000012"),
                new CheckpointStore(runDir("reference"), 0).checkpoints().stream()
                        .map(p -> p.getFileName().toString()).toList());
        // evaluations before training and after steps 6 and 12, on the held-out tail: finite losses
        assertEquals(3, reference.evals.size());
        assertTrue(reference.evals.stream().allMatch(l -> Double.isFinite(l) && l > 0), reference.evals.toString());
        assertTrue(referenceSummary.finalEvalLoss().isPresent());
        // 24 distinct training examples, none of the held-out ones (the last four lines), not the broken line
        List<String> ids = reference.idsByStep().values().stream().flatMap(List::stream).toList();
        assertEquals(STEPS * 2, new HashSet<>(ids).size());
        assertTrue(ids.stream().noneMatch(id -> id.endsWith(":4") || id.endsWith(":38") || id.endsWith(":39")
                        || id.endsWith(":40") || id.endsWith(":41")),
                ids.toString());
        // the data position in the last checkpoint is right after the last trained example
        TrainingStateFile state = TrainingStateFile.load(runDir("reference").resolve("checkpoints")
                .resolve("step-000012").resolve(CheckpointStore.STATE_FILE));
        assertEquals("file", state.metadata().get("data.kind"));
        assertEquals("25", state.metadata().get("data.record"), "24 examples and the broken line were read");
    }

    @Test
    void referenceRunPublishesMetricsEventsAndDeadLetters() throws Exception {
        Topics topics = Topics.withPrefix("spiel4j.");
        List<Metrics> metrics = new ArrayList<>();
        for (byte[] v : readAll(topics.metrics(), "reference")) {
            metrics.add(Metrics.parseFrom(v));
        }
        assertEquals(List.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
                metrics.stream().map(m -> (int) m.getStep()).toList());
        assertEquals(reference.steps.get(11).loss(), metrics.get(11).getLoss());
        assertTrue(metrics.stream().allMatch(m -> m.getTotalSteps() == STEPS && m.getTokensPerSecond() > 0));

        List<RunEvent> events = new ArrayList<>();
        for (byte[] v : readAll(topics.events(), "reference")) {
            events.add(RunEvent.parseFrom(v));
        }
        List<SelectionEvent> selections = events.stream().filter(RunEvent::hasSelection)
                .map(RunEvent::getSelection).toList();
        // SpIEL with S=4, gamma=2 over 12 steps reselects after steps 2, 6 and 10; the first replaces everything
        assertEquals(List.of(2L, 6L, 10L), selections.stream().map(SelectionEvent::getStep).toList());
        assertEquals(List.of(2, 6, 10), reference.steps.stream().filter(StepReport::reselected)
                .map(StepReport::step).toList());
        for (SelectionEvent e : selections) {
            assertEquals(5 * 7, e.getModulesCount(), "7 block linears in each of 5 layers");
            long active = e.getModulesList().stream().mapToLong(ModuleSelection::getActive).sum();
            assertEquals(active, e.getAgeHistogramList().stream().mapToLong(AgeBucket::getCount).sum());
        }
        assertEquals(1.0, selections.get(0).getFraction());
        assertTrue(selections.get(0).getModulesList().stream().allMatch(m -> m.getGrown() > 0));
        assertEquals(List.of(0L, 6L, 12L), events.stream().filter(RunEvent::hasEval).map(e -> e.getEval().getStep())
                .toList());
        assertEquals(List.of("step-000004", "step-000008", "step-000012"), events.stream()
                .filter(RunEvent::hasCheckpoint).map(e -> e.getCheckpoint().getCheckpointId()).toList());
        assertEquals(List.of(RunStatus.State.STARTED, RunStatus.State.COMPLETED), events.stream()
                .filter(RunEvent::hasStatus).map(e -> e.getStatus().getState()).toList());

        List<byte[]> dead = readAll(topics.deadLetters(), "reference");
        assertEquals(1, dead.size());
        DeadLetter letter = DeadLetter.parseFrom(dead.get(0));
        assertEquals("malformed_json", letter.getReason());
        assertEquals(4, letter.getSource().getFile().getLine());
        assertEquals(data.toString(), letter.getSource().getFile().getPath());
    }

    @Test
    void fileIsReadPassAfterPass() {
        Recorder run = new Recorder();
        RunSummary s = TrainingService.run(config("epochs", List.of("data.train=\"" + small + "\"",
                "schedule.steps=4", "eval.interval=0", "data.shuffle=false")), run);
        assertEquals(RunSummary.Outcome.COMPLETED, s.outcome(), s.toString());
        String f = small.getFileName().toString();
        // a pass ends with a smaller batch; the next pass starts at the first record again
        assertEquals(List.of(List.of(f + ":1", f + ":2"), List.of(f + ":3", f + ":4"), List.of(f + ":5"),
                List.of(f + ":1", f + ":2")), List.copyOf(run.idsByStep().values()));
        SavedCheckpoint last = new CheckpointStore(runDir("epochs"), 0).latest().orElseThrow();
        StreamPosition.InFile at = (StreamPosition.InFile) last.position();
        assertEquals(1, at.epoch(), "second pass");
        assertEquals(2, at.at().record().record(), "after its first two records");
    }

    /** The values of the records of {@code topic} keyed by {@code runId}, from the beginning to the end. */
    private static List<byte[]> readAll(String topic, String runId) {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()),
                new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            List<byte[]> out = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (partitions.stream().anyMatch(p -> consumer.position(p) < end.get(p))) {
                assertTrue(System.nanoTime() < deadline, "timed out reading " + topic);
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    if (runId.equals(new String(r.key(), StandardCharsets.UTF_8))) {
                        out.add(r.value());
                    }
                }
            }
            return out;
        }
    }

    @Test
    void injectedFailureResumesFromLastCheckpointWithSameResult() throws IOException {
        Recorder run = new Recorder();
        RunSummary s = TrainingService.run(config("failing", List.of("debug.fail-at-steps=[7]")), run);
        assertEquals(RunSummary.Outcome.COMPLETED, s.outcome(), s.toString());
        assertEquals(1, s.trainerRestarts());
        assertEquals(List.of(4), run.restarts, "restarted from the checkpoint of step 4");
        // steps 5 and 6 ran twice: before the failure and after the restart
        assertEquals(List.of(1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 9, 10, 11, 12),
                run.steps.stream().map(StepReport::step).toList());
        // The replayed steps repeat their first execution bit for bit (same restored state, same data).
        for (int replayed : new int[]{4, 5}) {
            StepReport first = run.steps.get(replayed);
            StepReport again = run.steps.get(replayed + 2);
            assertEquals(Double.doubleToRawLongBits(first.loss()), Double.doubleToRawLongBits(again.loss()));
            assertEquals(Double.doubleToRawLongBits(first.gradNorm()), Double.doubleToRawLongBits(again.gradNorm()));
        }
        assertTrainedExactlyOnceLikeReference(run);
        assertSameLossesAsReference(run);
        CheckpointAssertions.assertSameCheckpoint(finalCheckpoint("reference"), finalCheckpoint("failing"));
    }

    /**
     * The endless loop: the trainer fails again and again at different steps, each restart going back to
     * the same resume point. With 3 restarts allowed the fourth failure ends the run, naming the failed step, its
     * examples and the cause, in the summary and in a final FAILED status event on Kafka.
     */
    @Test
    void failuresAtDifferentStepsWithoutANewCheckpointEndTheRunAfterTheAllowedRestarts() throws Exception {
        Recorder run = new Recorder();
        // before step 3, then 2, then 4 (step 4 never completes, so its checkpoint is never written), then 3 again
        RunSummary s = TrainingService.run(config("failing-repeatedly", List.of(
                "supervision.max-restarts-without-progress=3", "debug.fail-at-steps=[3, 2, 4, 3]")), run);
        assertEquals(RunSummary.Outcome.FAILED, s.outcome(), s.toString());
        assertEquals(3, s.trainerRestarts());
        assertEquals(List.of(0, 0, 0), run.restarts, "every restart went back to the beginning");
        assertEquals(List.of(1, 2, 1, 1, 2, 3, 1, 2), run.steps.stream().map(StepReport::step).toList());
        assertTrue(new CheckpointStore(runDir("failing-repeatedly"), 0).latest().isEmpty());
        String lastFailure = "step 3 (examples " + reference.idsByStep().get(3)
                + "): injected failure before step 3 (spiel4j.debug.fail-at-steps)";
        String expected = "the trainer failed 4 times before writing a checkpoint (step 3, step 2, step 4, step 3;"
                + " spiel4j.supervision.max-restarts-without-progress = 3); the last failure: " + lastFailure;
        assertEquals(expected, s.error());
        assertEquals(4, run.failures.size(), run.failures.toString());
        for (int i = 0; i < 3; i++) {
            assertTrue(run.failures.get(i).contains("; restart " + (i + 1) + " of at most 3 without a new checkpoint"),
                    run.failures.get(i));
        }
        assertEquals("run FAILED: " + expected, run.failures.get(3));

        List<RunStatus> statuses = new ArrayList<>();
        for (byte[] v : readAll(Topics.withPrefix("spiel4j.").events(), "failing-repeatedly")) {
            RunEvent e = RunEvent.parseFrom(v);
            if (e.hasStatus()) {
                statuses.add(e.getStatus());
            }
        }
        assertEquals(List.of(RunStatus.State.STARTED, RunStatus.State.TRAINER_RESTARTED,
                RunStatus.State.TRAINER_RESTARTED, RunStatus.State.TRAINER_RESTARTED, RunStatus.State.FAILED),
                statuses.stream().map(RunStatus::getState).toList());
        RunStatus last = statuses.get(statuses.size() - 1);
        assertEquals(expected, last.getMessage());
        assertEquals(2, last.getStep(), "the last completed step");
    }

    /**
     * Failures separated by progress are not "in a row": with 2 restarts allowed without a new checkpoint, two
     * failures before the checkpoint of step 4 and two after it (but before the one of step 8) are all restarted,
     * and the run completes with the reference's result.
     */
    @Test
    void failuresSeparatedByNewCheckpointsDoNotEndTheRun() throws Exception {
        Recorder run = new Recorder();
        RunSummary s = TrainingService.run(config("failing-with-progress", List.of(
                "supervision.max-restarts-without-progress=2", "debug.fail-at-steps=[3, 2, 6, 5]")), run);
        assertEquals(RunSummary.Outcome.COMPLETED, s.outcome(), s.toString());
        assertEquals(4, s.trainerRestarts());
        assertEquals(List.of(0, 0, 4, 4), run.restarts);
        assertEquals(4, run.failures.size(), run.failures.toString());
        assertTrue(run.failures.get(1).contains("restart 2 of at most 2"), run.failures.get(1));
        assertTrue(run.failures.get(2).contains("restart 1 of at most 2"), "counted anew after the checkpoint of step"
                + " 4: " + run.failures.get(2));
        assertTrue(run.failures.get(3).contains("restart 2 of at most 2"), run.failures.get(3));
        assertTrainedExactlyOnceLikeReference(run);
        assertSameLossesAsReference(run);
        CheckpointAssertions.assertSameCheckpoint(finalCheckpoint("reference"), finalCheckpoint("failing-with-progress"));
    }

    @Test
    void restartOfTheWholeSystemResumesWithSameResult() throws Exception {
        Recorder first = new Recorder();
        CountDownLatch atStep5 = new CountDownLatch(1);
        first.onStep = step -> {
            if (step.step() == 5) {
                atStep5.countDown();
            }
        };
        TrainingService.Run running = TrainingService.start(config("restarted", List.of()), first);
        assertTrue(atStep5.await(60, TimeUnit.SECONDS));
        // What SIGTERM does: coordinated shutdown stops the run, which writes a final checkpoint.
        running.system().terminate();
        RunSummary stopped = running.await();
        assertEquals(RunSummary.Outcome.STOPPED, stopped.outcome(), stopped.toString());
        int stoppedAt = stopped.steps();
        assertTrue(stoppedAt >= 5 && stoppedAt < STEPS, "stopped at " + stoppedAt);
        assertEquals(stoppedAt, new CheckpointStore(runDir("restarted"), 0).latest().orElseThrow().step());

        Recorder second = new Recorder();
        RunSummary done = TrainingService.run(config("restarted", List.of()), second);
        assertEquals(RunSummary.Outcome.COMPLETED, done.outcome(), done.toString());
        assertEquals(stoppedAt + 1, second.steps.get(0).step(), "continues after the final checkpoint");
        Recorder both = new Recorder();
        both.steps.addAll(first.steps);
        both.steps.addAll(second.steps);
        assertTrainedExactlyOnceLikeReference(both);
        assertSameLossesAsReference(both);
        CheckpointAssertions.assertSameCheckpoint(finalCheckpoint("reference"), finalCheckpoint("restarted"));
    }

    @Test
    void checkpointPulledFromKafkaEqualsTheRunDirectoryFiles() throws Exception {
        Topics topics = Topics.withPrefix("spiel4j.");
        PulledCheckpoint pulled = new CheckpointPuller(kafka.bootstrapServers(), topics.checkpoints(),
                Duration.ofSeconds(30)).pullLatest("reference", dir.resolve("pulled")).orElseThrow();
        assertEquals("step-000012", pulled.manifest().getCheckpointId());
        assertEquals(STEPS, pulled.manifest().getStep());
        assertEquals(25, pulled.manifest().getDataPosition().getFile().getNextRecord());
        Path local = runDir("reference").resolve("checkpoints").resolve("step-000012");
        for (String part : List.of(CheckpointStore.DELTA_FILE, CheckpointStore.STATE_FILE)) {
            assertArrayEquals(Files.readAllBytes(local.resolve(part)), Files.readAllBytes(pulled.file(part)), part);
        }
    }

    @Test
    void mismatchedBaseModelIsRefusedBeforeTraining() throws IOException {
        Path runs = dir.resolve("runs");
        Path copy = runs.resolve("other-base").resolve("checkpoints").resolve("step-000004");
        Files.createDirectories(copy);
        Path source = runDir("reference").resolve("checkpoints").resolve("step-000004");
        SparseFineTuning sft = SparseFineTuning.load(source.resolve(CheckpointStore.DELTA_FILE));
        new SparseFineTuning("not-this-model", sft.method(), sft.hyperparameters(), sft.deltas())
                .save(copy.resolve(CheckpointStore.DELTA_FILE));
        TrainingStateFile state = TrainingStateFile.load(source.resolve(CheckpointStore.STATE_FILE));
        Map<String, String> meta = new java.util.LinkedHashMap<>(state.metadata());
        meta.put("base_fingerprint", "not-this-model");
        new TrainingStateFile(meta, state.floats(), state.ints(), state.longs())
                .save(copy.resolve(CheckpointStore.STATE_FILE));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> TrainingService.run(config("other-base", List.of()), ProgressListener.NONE));
        assertTrue(e.getMessage().contains("not-this-model"), e.getMessage());
    }

    @Test
    void continualModeTrainsOnExamplesProducedWhileRunningAndResumesAtTheStoredOffsets() throws Exception {
        String prefix = "continual.";
        List<String> o = List.of("data.source=kafka", "schedule.steps=0", "eval.interval=0",
                "checkpoint.interval=2", "kafka.topic-prefix=\"" + prefix + "\"");
        String input = Topics.withPrefix(prefix).input();
        Recorder first = new Recorder();
        CountDownLatch fourSteps = new CountDownLatch(4);
        first.onStep = s -> fourSteps.countDown();
        TrainingService.Run running = TrainingService.start(config("continual", o), first);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()),
                new ByteArraySerializer(), new ByteArraySerializer())) {
            // The run is up and reading: the topic exists once the supervisor has started.
            awaitTopic(producer, input);
            for (int i = 0; i < 8; i++) {
                producer.send(new ProducerRecord<>(input, 0, null, example(i))).get();
            }
            producer.send(new ProducerRecord<>(input, 0, null, "not a protobuf".getBytes())).get();
            producer.send(new ProducerRecord<>(input, 0, null, example(8))).get();
            producer.send(new ProducerRecord<>(input, 0, null, example(9))).get();
            assertTrue(fourSteps.await(60, TimeUnit.SECONDS), "four steps on produced examples");
            running.stop();
            RunSummary stopped = running.await();
            assertEquals(RunSummary.Outcome.STOPPED, stopped.outcome(), stopped.toString());
            List<String> trained = first.idsByStep().values().stream().flatMap(List::stream).toList();
            assertTrue(trained.size() >= 8, trained.toString());
            assertEquals(List.of("ex-0", "ex-1", "ex-2", "ex-3", "ex-4", "ex-5", "ex-6", "ex-7"),
                    trained.subList(0, 8));

            // Resume: the stored offsets continue exactly after what was trained, nothing twice.
            Recorder second = new Recorder();
            CountDownLatch more = new CountDownLatch(1);
            second.onStep = s -> more.countDown();
            TrainingService.Run resumed = TrainingService.start(config("continual", o), second);
            for (int i = 10; i < 14; i++) {
                producer.send(new ProducerRecord<>(input, 0, null, example(i))).get();
            }
            assertTrue(more.await(60, TimeUnit.SECONDS));
            resumed.stop();
            RunSummary resumedSummary = resumed.await();
            assertEquals(RunSummary.Outcome.STOPPED, resumedSummary.outcome(), resumedSummary.toString());
            List<String> all = new ArrayList<>(trained);
            second.idsByStep().values().forEach(all::addAll);
            assertTrue(all.size() >= 10, all.toString());
            List<String> expected = new ArrayList<>();
            for (int i = 0; i < all.size(); i++) {
                expected.add("ex-" + i);
            }
            assertEquals(expected, all, "every example once, in the topic's order");
            // Dead letters are at least once: a record after the last checkpoint is read again on resume.
            assertTrue(stopped.deadLetters() + resumedSummary.deadLetters() >= 1, "the record that is not a TrainingExample");
        }
    }

    private static byte[] example(int i) {
        return TrainingExample.newBuilder().setId("ex-" + i).setPromptResponse(PromptResponse.newBuilder()
                .setPrompt("Count: " + i + "\n").setResponse("The number after " + i + " is " + (i + 1) + "."))
                .build().toByteArray();
    }

    private static void awaitTopic(KafkaProducer<byte[], byte[]> producer, String topic) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try {
                if (!producer.partitionsFor(topic).isEmpty()) {
                    return;
                }
            } catch (RuntimeException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
            }
            Thread.sleep(200);
        }
    }
}
