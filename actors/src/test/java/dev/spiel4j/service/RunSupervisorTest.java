package dev.spiel4j.service;

import com.typesafe.config.ConfigFactory;
import dev.spiel4j.config.RunSettings;
import dev.spiel4j.kafka.OutageListener;
import dev.spiel4j.proto.v1.KafkaOutage;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import org.apache.pekko.actor.testkit.typed.annotations.JUnit5TestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.JUnit5TestKitBuilder;
import org.apache.pekko.actor.testkit.typed.javadsl.ManualTime;
import org.apache.pekko.actor.testkit.typed.javadsl.TestKitJUnit5Extension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The supervisor alone, the publisher, selector, data streamer and evaluator played by probes, and its trainers by a
 * stand-in the test makes report and fail: it passes progress on, publishes the run's status, restarts a failed
 * trainer after its backoff as a new trainer (bounded by restarts without a new checkpoint, then the run ends FAILED
 * saying why), stops through the trainer's final checkpoint, and ends every run the same way: evaluations drained,
 * dead letters counted, the final status published, Kafka flushed, then the summary.
 *
 * <p>Time is manual ({@link ManualTime}), so a restart's backoff passes exactly when the test says.
 */
@ExtendWith(TestKitJUnit5Extension.class)
// one actor system for the class: the extension shuts down only the kit of the last test instance
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RunSupervisorTest {
    private static final String RUN = "supervisor-test";
    private static final int MAX_RESTARTS = 2;
    private static final Duration OUTAGE_AFTER = Duration.ofSeconds(30);
    /** Longer than any restart backoff (at most 10 s, plus 20 % jitter), shorter than the asks of the run's end. */
    private static final Duration PAST_ANY_BACKOFF = Duration.ofSeconds(15);
    private static final Pattern BACKOFF = Pattern.compile("in (\\d+) ms$");

    @JUnit5TestKit
    ActorTestKit kit = new JUnit5TestKitBuilder().withCustomConfig(ConfigFactory.parseString(
            // generous: what is expected comes at once on an idle machine, but this one may be busy
            "pekko.actor.testkit.typed.single-expect-default = 30s").withFallback(ManualTime.config())).build();
    private final ManualTime time = ManualTime.get(kit.system());

    /** What the listener heard, besides steps ({@link StepReport}) and checkpoints ({@link SavedCheckpoint}). */
    private record Evaluation(int step, double loss) {
    }

    private record TrainerFailure(String message) {
    }

    private record TrainerRestart(int step) {
    }

    /** A trainer the supervisor spawned: the test plays it, and fails it with {@link #fail}. */
    private record Trainer(ActorRef<Object> ref, TrainerActor.Peers peers) {
        void fail(RuntimeException cause) {
            ref.tell(new Fail(cause));
        }
    }

    private record Fail(RuntimeException cause) {
    }

    private TestProbe<Publisher.Command> publisher;
    private TestProbe<Selector.Command> selector;
    private TestProbe<DataStreamer.Command> streamer;
    private TestProbe<Evaluator.Command> evaluator;
    private TestProbe<Trainer> trainers;
    private TestProbe<TrainerActor.Stop> stops;
    private TestProbe<Object> progress;
    private CompletableFuture<RunSummary> result;
    private ActorRef<RunSupervisor.Command> supervisor;
    private RunSettings settings;

    @BeforeEach
    void startRun(@TempDir Path dir) {
        publisher = kit.createTestProbe();
        selector = kit.createTestProbe();
        streamer = kit.createTestProbe();
        evaluator = kit.createTestProbe();
        trainers = kit.createTestProbe();
        stops = kit.createTestProbe();
        progress = kit.createTestProbe();
        ActorRef<Object> heard = progress.getRef();
        ProgressListener listener = new ProgressListener() {
            @Override
            public void onStep(StepReport step) {
                heard.tell(step);
            }

            @Override
            public void onEvaluation(int step, double loss) {
                heard.tell(new Evaluation(step, loss));
            }

            @Override
            public void onCheckpoint(SavedCheckpoint checkpoint) {
                heard.tell(checkpoint);
            }

            @Override
            public void onTrainerFailure(String message) {
                heard.tell(new TrainerFailure(message));
            }

            @Override
            public void onTrainerRestart(int step) {
                heard.tell(new TrainerRestart(step));
            }
        };
        settings = TestPlans.settings(dir, RUN,
                "supervision.max-restarts-without-progress=" + MAX_RESTARTS,
                "kafka.outage-after=" + OUTAGE_AFTER.toSeconds() + "s");
        result = new CompletableFuture<>();
        supervisor = kit.spawn(RunSupervisor.create(settings, listener, result, new RunSupervisor.Crew(
                publisher.getRef(), selector.getRef(), streamer.getRef(), evaluator.getRef(), this::trainer)));
    }

    /** The stand-in trainer: announces itself with the peers it was given, hands Stop on, fails when told to. */
    private Behavior<TrainerActor.Command> trainer(TrainerActor.Peers peers) {
        Behavior<Object> trainer = Behaviors.setup(ctx -> {
            trainers.getRef().tell(new Trainer(ctx.getSelf(), peers));
            return Behaviors.receive(Object.class)
                    .onMessage(Fail.class, f -> {
                        throw f.cause();
                    })
                    .onMessage(TrainerActor.Stop.class, s -> {
                        stops.getRef().tell(s);
                        return Behaviors.same();
                    })
                    .build();
        });
        // it takes Fail too, which the supervisor, holding it as a trainer, cannot send
        return trainer.narrow();
    }

    @Test
    void passesProgressOnPublishesTheStatusAndEndsCompletedOnceKafkaHasEverything() throws Exception {
        Trainer trainer = startFirstTrainer();
        assertEquals(new TrainerActor.Peers(streamer.getRef(), selector.getRef(), evaluator.getRef(),
                publisher.getRef(), supervisor), trainer.peers());

        stepDone(1);
        stepDone(2);
        supervisor.tell(new RunSupervisor.CheckpointDone(checkpoint(2)));
        assertEquals(checkpoint(2), progress.receiveMessage());
        supervisor.tell(new RunSupervisor.EvalDone(2, 1.25));
        assertEquals(new Evaluation(2, 1.25), progress.receiveMessage());
        supervisor.tell(new RunSupervisor.TrainerFinished(2));

        RunSummary summary = finish(RunStatus.State.COMPLETED, 2, "", 3);
        assertEquals(RUN, summary.runId());
        assertEquals(2, summary.steps());
        assertEquals(1, summary.checkpoints());
        assertEquals(checkpoint(2).deltaFile().getParent(), summary.lastCheckpoint());
        assertEquals(3, summary.deadLetters());
        assertEquals(0, summary.trainerRestarts());
        assertEquals(step(2).loss(), summary.finalLoss());
        assertEquals(OptionalDouble.of(1.25), summary.finalEvalLoss());
        progress.expectNoMessage();
    }

    @Test
    void restartsAFailedTrainerAfterItsBackoffAndANewCheckpointRenewsTheRestartsAllowed() throws Exception {
        Trainer first = startFirstTrainer();
        checkpointDone(4);
        first.fail(stepFailed(6));
        String failedAt6 = "step 6 (examples [train.jsonl:6]): loss NaN and gradient norm NaN";
        long backoff = expectRestartAnnounced("trainer failed at " + failedAt6 + "; restart 1 of at most "
                + MAX_RESTARTS + " without a new checkpoint");
        assertTrue(backoff >= 200 && backoff <= 240, "the first backoff is 200 ms plus up to 20 %: " + backoff);

        // the new trainer comes when the backoff is over, not a millisecond before
        time.timePasses(Duration.ofMillis(backoff - 1));
        trainers.expectNoMessage();
        time.timePasses(Duration.ofMillis(1));
        Trainer second = trainers.receiveMessage();
        assertNotEquals(first.ref(), second.ref());
        assertEquals(first.peers(), second.peers());
        supervisor.tell(new RunSupervisor.TrainerStarted(4, Optional.of(checkpointId(4))));
        assertStatus(RunStatus.State.TRAINER_RESTARTED, 4,
                "trainer restarted at step 4 from checkpoint step-000004 after it failed at " + failedAt6);
        assertEquals(new TrainerRestart(4), progress.receiveMessage());

        // a checkpoint newer than the one resumed from is progress: the next failure is again the first
        checkpointDone(8);
        second.fail(stepFailed(9));
        backoff = expectRestartAnnounced("trainer failed at step 9 (examples [train.jsonl:9]): loss NaN and gradient "
                + "norm NaN; restart 1 of at most " + MAX_RESTARTS + " without a new checkpoint");
        time.timePasses(Duration.ofMillis(backoff));
        trainers.receiveMessage();
        supervisor.tell(new RunSupervisor.TrainerStarted(8, Optional.of(checkpointId(8))));
        assertStatus(RunStatus.State.TRAINER_RESTARTED, 8, "trainer restarted at step 8 from checkpoint step-000008"
                + " after it failed at step 9 (examples [train.jsonl:9]): loss NaN and gradient norm NaN");
        assertEquals(new TrainerRestart(8), progress.receiveMessage());
        stepDone(9);
        supervisor.tell(new RunSupervisor.TrainerFinished(9));

        RunSummary summary = finish(RunStatus.State.COMPLETED, 9, "", 0);
        assertEquals(2, summary.trainerRestarts());
        assertEquals(2, summary.checkpoints());
    }

    @Test
    void failuresWithoutANewCheckpointEndTheRunFailedAfterTheAllowedRestarts() throws Exception {
        Trainer trainer = startFirstTrainer();
        checkpointDone(4);

        // failures at different steps, none writing a checkpoint newer than step 4's, each restarted
        List<RuntimeException> causes = List.of(stepFailed(6), stepFailed(5));
        for (int i = 0; i < causes.size(); i++) {
            trainer.fail(causes.get(i));
            long backoff = expectRestartAnnounced("restart " + (i + 1) + " of at most " + MAX_RESTARTS
                    + " without a new checkpoint");
            assertTrue(backoff >= 200L << i, "the backoff doubles with each restart without progress: " + backoff);
            time.timePasses(Duration.ofMillis(backoff));
            trainer = trainers.receiveMessage();
            supervisor.tell(new RunSupervisor.TrainerStarted(4, Optional.of(checkpointId(4))));
            assertEquals(RunStatus.State.TRAINER_RESTARTED, expectStatus().getState());
            assertEquals(new TrainerRestart(4), progress.receiveMessage());
        }
        // one more, outside a step this time, is one too many
        trainer.fail(new IllegalStateException("the selector did not answer"));
        String why = "the trainer failed 3 times after the checkpoint of step 4 without writing a newer one (step 6, "
                + "step 5, after step 4; spiel4j.supervision.max-restarts-without-progress = 2); the last failure: "
                + "after step 4 (outside a step): the selector did not answer";
        assertEquals(new TrainerFailure("run FAILED: " + why), progress.receiveMessage());
        // and no restart follows, however long one waits
        time.timePasses(PAST_ANY_BACKOFF);
        trainers.expectNoMessage();

        RunSummary summary = finish(RunStatus.State.FAILED, 4, why, 0);
        assertEquals(MAX_RESTARTS, summary.trainerRestarts());
        progress.expectNoMessage();
    }

    @Test
    void stopAsksTheTrainerForItsFinalCheckpointOnceAndEndsStopped() throws Exception {
        startFirstTrainer();
        stepDone(1);

        supervisor.tell(new RunSupervisor.Stop());
        stops.receiveMessage();
        supervisor.tell(new RunSupervisor.Stop());
        stops.expectNoMessage();
        // the trainer's side of a stop: its final checkpoint, then that it stopped
        supervisor.tell(new RunSupervisor.CheckpointDone(checkpoint(1)));
        supervisor.tell(new RunSupervisor.TrainerStopped(1));

        RunSummary summary = finish(RunStatus.State.STOPPED, 1, "", 0);
        assertEquals(1, summary.steps());
        assertEquals(1, summary.checkpoints());
    }

    @Test
    void stopWhileAFailedTrainerWaitsForItsRestartEndsTheRunAtTheLastCheckpoint() throws Exception {
        Trainer trainer = startFirstTrainer();
        checkpointDone(4);
        trainer.fail(stepFailed(6));
        expectRestartAnnounced("restart 1 of at most " + MAX_RESTARTS + " without a new checkpoint");

        supervisor.tell(new RunSupervisor.Stop());
        String why = "stopped while the failed trainer waited for its restart; the run resumes from the checkpoint"
                + " of step 4";
        playEnd(RunStatus.State.STOPPED, 4, why, 0);
        // the backoff that was waiting ends while the run reports: no trainer is started for a run that has ended
        time.timePasses(PAST_ANY_BACKOFF);
        trainers.expectNoMessage();
        stops.expectNoMessage();
        publisher.expectMessageClass(Publisher.Flush.class).replyTo().tell(new Publisher.Flushed());
        RunSummary summary = summary(RunStatus.State.STOPPED, why);
        assertEquals(0, summary.trainerRestarts());
    }

    @Test
    void publishesKafkaOutagesCountsThemAndEndsWithoutAcknowledgementsAfterTwiceOutageAfter() throws Exception {
        startFirstTrainer();
        OutageListener outages = RunSupervisor.outageListener(supervisor);
        Instant since = Instant.parse("2025-01-02T03:04:05Z");

        outages.outageStarted(since, "no acknowledgement from Kafka", 7);
        KafkaOutage started = expectEvent().getOutage();
        assertTrue(started.getOngoing());
        assertEquals(since.getEpochSecond(), started.getSince().getSeconds());
        assertEquals(7, started.getBufferedRecords());
        assertEquals("no acknowledgement from Kafka", started.getCause());
        outages.outageEnded(since, Duration.ofSeconds(3));
        KafkaOutage ended = expectEvent().getOutage();
        assertFalse(ended.getOngoing());
        assertEquals(since.getEpochSecond(), ended.getSince().getSeconds());
        assertEquals("recovered after PT3S", ended.getCause());

        // Kafka goes away again and does not come back before the run ends
        outages.outageStarted(since.plusSeconds(60), "no acknowledgement from Kafka", 2);
        assertTrue(expectEvent().getOutage().getOngoing());
        supervisor.tell(new RunSupervisor.Stop());
        stops.receiveMessage();
        supervisor.tell(new RunSupervisor.TrainerStopped(0));
        playEnd(RunStatus.State.STOPPED, 0, "", 0);
        // the flush the publisher never answers: the run reports anyway, after twice outage-after
        publisher.expectMessageClass(Publisher.Flush.class);
        time.timePasses(OUTAGE_AFTER.multipliedBy(2).minusMillis(1));
        assertFalse(result.isDone());
        time.timePasses(Duration.ofMillis(1));
        RunSummary summary = summary(RunStatus.State.STOPPED, "");
        assertEquals(2, summary.kafkaOutages());
    }

    @Test
    void aFailedDataStreamEndsTheRunFailed() throws Exception {
        startFirstTrainer();
        stepDone(1);

        streamer.stop();
        // the streamer is gone, so the dead letters go uncounted (-1): the ask fails at once, its recipient terminated
        evaluator.expectMessageClass(Evaluator.Drain.class).replyTo().tell(new Evaluator.Drained());
        String why = "the training data stream failed; see the log for the cause";
        assertStatus(RunStatus.State.FAILED, 1, why);
        publisher.expectMessageClass(Publisher.Flush.class).replyTo().tell(new Publisher.Flushed());
        RunSummary summary = summary(RunStatus.State.FAILED, why);
        assertEquals(-1, summary.deadLetters());
    }

    /** The first trainer, started as a new run's: the run's status says so. */
    private Trainer startFirstTrainer() {
        Trainer trainer = trainers.receiveMessage();
        supervisor.tell(new RunSupervisor.TrainerStarted(0, Optional.empty()));
        assertStatus(RunStatus.State.STARTED, 0, "new run");
        return trainer;
    }

    /** The trainer did step {@code t}: the listener hears of it. */
    private void stepDone(int t) {
        supervisor.tell(new RunSupervisor.StepDone(step(t)));
        assertEquals(step(t), progress.receiveMessage());
    }

    /** The trainer wrote the checkpoint of {@code step}: the listener hears of it. */
    private void checkpointDone(int step) {
        supervisor.tell(new RunSupervisor.CheckpointDone(checkpoint(step)));
        assertEquals(checkpoint(step), progress.receiveMessage());
    }

    /** The listener heard of a trainer failure that ends with {@code restart}, and a restart backoff: returned. */
    private long expectRestartAnnounced(String restart) {
        String message = progress.expectMessageClass(TrainerFailure.class).message();
        Matcher backoff = BACKOFF.matcher(message);
        assertTrue(message.contains(restart + ", in ") && backoff.find(), message);
        return Long.parseLong(backoff.group(1));
    }

    /**
     * Plays the run's end: the evaluator drains, the streamer counts {@code deadLetters}, the final status is
     * published, and the publisher answers the flush; the summary comes only after that answer.
     */
    private RunSummary finish(RunStatus.State state, int step, String message, long deadLetters) throws Exception {
        playEnd(state, step, message, deadLetters);
        Publisher.Flush flush = publisher.expectMessageClass(Publisher.Flush.class);
        assertFalse(result.isDone(), "the summary waits for Kafka's acknowledgements");
        flush.replyTo().tell(new Publisher.Flushed());
        return summary(state, message);
    }

    /** The run's end up to its final status event. */
    private void playEnd(RunStatus.State state, int step, String message, long deadLetters) {
        evaluator.expectMessageClass(Evaluator.Drain.class).replyTo().tell(new Evaluator.Drained());
        streamer.expectMessageClass(DataStreamer.GetDeadLetters.class).replyTo().tell(deadLetters);
        assertStatus(state, step, message);
    }

    /** The summary the run completed with, which says what its final status said; the supervisor has then stopped. */
    private RunSummary summary(RunStatus.State state, String message) throws Exception {
        RunSummary summary = result.get(30, TimeUnit.SECONDS);
        kit.createTestProbe().expectTerminated(supervisor);
        assertEquals(settings.run().runDir(), summary.runDir());
        assertEquals(state.name(), summary.outcome().name());
        assertEquals(message, summary.error() == null ? "" : summary.error());
        return summary;
    }

    private void assertStatus(RunStatus.State state, int step, String message) {
        RunStatus status = expectStatus();
        assertEquals(state, status.getState());
        assertEquals(step, status.getStep());
        assertEquals(message, status.getMessage());
    }

    private RunStatus expectStatus() {
        RunEvent event = expectEvent();
        assertTrue(event.hasStatus(), event.toString());
        return event.getStatus();
    }

    private RunEvent expectEvent() {
        RunEvent event = publisher.expectMessageClass(Publisher.PublishEvent.class).event();
        assertEquals(RUN, event.getRunId());
        return event;
    }

    private static StepReport step(int t) {
        return new StepReport(t, 10, 3.0 - 0.1 * t, 1e-3, 0.5, 64, 0.25, List.of("train.jsonl:" + t), false);
    }

    private static String checkpointId(int step) {
        return String.format("step-%06d", step);
    }

    /** A checkpoint as the supervisor sees it: its step and its directory (the state is none of its business). */
    private SavedCheckpoint checkpoint(int step) {
        Path checkpointDir = settings.run().runDir().resolve(checkpointId(step));
        return new SavedCheckpoint(checkpointId(step), step, checkpointDir.resolve(CheckpointStore.DELTA_FILE),
                checkpointDir.resolve(CheckpointStore.STATE_FILE), "base", "none", StreamPosition.InFile.start(0, false),
                null);
    }

    /** How the trainer fails a step whose loss diverged. */
    private static StepFailed stepFailed(int step) {
        return new StepFailed(step, List.of("train.jsonl:" + step),
                new IllegalStateException("loss NaN and gradient norm NaN"));
    }
}
