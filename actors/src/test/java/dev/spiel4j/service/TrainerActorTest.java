package dev.spiel4j.service;

import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.data.Batch;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.sft.DropGrowSelector;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.train.MicroBatchGradient;
import dev.spiel4j.train.SummedGradient;
import dev.spiel4j.train.TrainingSession;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.testkit.typed.annotations.JUnit5TestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.JUnit5TestKitBuilder;
import org.apache.pekko.actor.testkit.typed.javadsl.TestKitJUnit5Extension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The trainer alone, its peers played by probes: it positions the data, asks for batches, steps, and at a SpIEL
 * reselection asks the selector for every matrix's decision without waiting on a thread, reporting the step only
 * once the decisions are carried out; the data's end ends the run with a checkpoint.
 */
@ExtendWith(TestKitJUnit5Extension.class)
class TrainerActorTest {
    /** How long a probe waits for what follows a training step or the engine's start (compute, not a message hop). */
    private static final Duration STEP_TIMEOUT = Duration.ofSeconds(30);
    @JUnit5TestKit
    ActorTestKit kit = new JUnit5TestKitBuilder().build();

    @TempDir
    Path dir;

    @Test
    void asksTheSelectorForEveryMatrixAndReportsTheStepOnceItsDecisionsAreCarriedOut() throws IOException {
        RunPlan plan = TestPlans.stories260K(dir, "trainer-test",
                "batch.size=2",
                "method.name=spiel-ma",
                "method.reselection-interval=2",
                "method.selection-steps=2",
                "schedule.steps=3",
                "checkpoint.interval=0",
                "eval.interval=0");

        TestProbe<DataStreamer.Command> streamer = kit.createTestProbe();
        TestProbe<Selector.Command> selector = kit.createTestProbe();
        TestProbe<Evaluator.Command> evaluator = kit.createTestProbe();
        TestProbe<Publisher.Command> publisher = kit.createTestProbe();
        TestProbe<RunSupervisor.Command> supervisor = kit.createTestProbe();
        kit.spawn(TrainerActor.create(plan, new TrainerActor.Peers(streamer.getRef(), selector.getRef(),
                evaluator.getRef(), publisher.getRef(), supervisor.getRef()), FailureInjection.NONE));

        streamer.expectMessageClass(DataStreamer.ResetTo.class);
        assertEquals(0, supervisor.expectMessageClass(RunSupervisor.TrainerStarted.class, STEP_TIMEOUT).step());
        int reselectionsAnswered = 0;
        for (int step = 1; step <= 3; step++) {
            Batch batch = TestPlans.batch(plan, 2 * step, 2 * step + 2);
            streamer.expectMessageClass(DataStreamer.NextBatch.class, STEP_TIMEOUT).replyTo()
                    .tell(new DataStreamer.Served(batch, StreamPosition.InFile.start(0, false)));
            if (step == 2) {
                // the reselection: one request per targeted matrix, and nothing reported until all are answered
                List<Selector.Decide> asked = new ArrayList<>();
                int matrices = plan.model().config().layers() * 7;
                for (int i = 0; i < matrices; i++) {
                    asked.add(selector.expectMessageClass(Selector.Decide.class, STEP_TIMEOUT));
                }
                supervisor.expectNoMessage();
                streamer.expectNoMessage();
                // answered out of order: each decision still goes to its own matrix
                for (int i = asked.size() - 1; i >= 0; i--) {
                    Selector.Decide d = asked.get(i);
                    SelectionDecision decision = DropGrowSelector.decide(d.request());
                    assertFalse(decision.size() == 0 && d.request().replacements() > 0, d.request().module());
                    d.replyTo().tell(decision);
                    reselectionsAnswered++;
                }
            }
            StepReport report = supervisor.expectMessageClass(RunSupervisor.StepDone.class, STEP_TIMEOUT).report();
            assertEquals(step, report.step());
            assertEquals(step == 2, report.reselected());
            assertTrue(Double.isFinite(report.loss()));
        }
        selector.expectNoMessage();
        assertEquals(plan.model().config().layers() * 7, reselectionsAnswered);
        // the last step ends the run: a final checkpoint, then the trainer is done
        assertEquals(3, supervisor.expectMessageClass(RunSupervisor.CheckpointDone.class, STEP_TIMEOUT).checkpoint().step());
        assertEquals(3, supervisor.expectMessageClass(RunSupervisor.TrainerFinished.class).step());
    }

    @Test
    void asCoordinatorItSumsTheWorkersPartsAndGivesALostWorkersMicroBatchesToTheOthers() throws IOException {
        RunPlan plan = TestPlans.stories260K(dir, "coordinator-test", "batch.size=2", "batch.micro-batches=3",
                "method.name=spiel-ma", "schedule.steps=2", "checkpoint.interval=0", "eval.interval=0",
                "cluster.workers=2");
        TestProbe<DataStreamer.Command> streamer = kit.createTestProbe();
        TestProbe<RunSupervisor.Command> supervisor = kit.createTestProbe();
        // two gradient workers, played by probes registered where the trainer looks for workers
        List<TestProbe<GradientWorker.Command>> workers = List.of(kit.createTestProbe(), kit.createTestProbe());
        workers.forEach(w -> kit.system().receptionist().tell(Receptionist.register(GradientWorker.KEY, w.getRef())));
        kit.spawn(TrainerActor.create(plan, new TrainerActor.Peers(streamer.getRef(),
                kit.<Selector.Command>createTestProbe().getRef(), kit.<Evaluator.Command>createTestProbe().getRef(),
                kit.<Publisher.Command>createTestProbe().getRef(), supervisor.getRef()), FailureInjection.NONE));
        streamer.expectMessageClass(DataStreamer.ResetTo.class);
        supervisor.expectMessageClass(RunSupervisor.TrainerStarted.class, STEP_TIMEOUT);
        List<Batch> batches = new ArrayList<>();
        for (int m = 0; m < 3; m++) {
            batches.add(TestPlans.batch(plan, 2 * m, 2 * m + 2));
            streamer.expectMessageClass(DataStreamer.NextBatch.class, STEP_TIMEOUT).replyTo()
                    .tell(new DataStreamer.Served(batches.get(m), StreamPosition.InFile.start(0, false)));
        }
        long tokens = batches.stream().mapToLong(Batch::lossTokens).sum();
        try (TrainingSession own = TrainingSession.open(plan.model(), plan.placement(), plan.trainingSpec())) {
            // each worker is synced to the trainer's state at step 0, then given its micro-batches: 3 over 2 workers
            List<GradientWorker.Compute> asked = new ArrayList<>();
            for (TestProbe<GradientWorker.Command> w : workers) {
                assertEquals(own.state().digest(), w.expectMessageClass(GradientWorker.Sync.class, STEP_TIMEOUT)
                        .state().digest());
                asked.add(w.expectMessageClass(GradientWorker.Compute.class, STEP_TIMEOUT));
            }
            assertEquals(List.of(2, 1), asked.stream().map(c -> c.microBatches().size()).sorted(
                    java.util.Comparator.reverseOrder()).toList());
            // the worker with two micro-batches answers; the other one is lost before it does
            int busy = asked.get(0).microBatches().size() == 2 ? 0 : 1;
            answer(own, asked.get(busy), tokens);
            workers.get(1 - busy).stop();
            assertTrue(supervisor.expectMessageClass(RunSupervisor.WorkerLost.class, STEP_TIMEOUT).why()
                    .contains("left the cluster"));
            GradientWorker.Compute reassigned = workers.get(busy).expectMessageClass(GradientWorker.Compute.class,
                    STEP_TIMEOUT);
            assertEquals(List.of(asked.get(1 - busy).microBatches().get(0).index()),
                    reassigned.microBatches().stream().map(GradientWorker.IndexedBatch::index).toList());
            answer(own, reassigned, tokens);
            // the remaining worker applies the sum of the three parts in micro-batch order, as the trainer did
            List<MicroBatchGradient> parts = new ArrayList<>();
            for (int m = 0; m < 3; m++) {
                parts.add(own.gradientOf(batches.get(m), m, tokens, List.of()));
            }
            SummedGradient expected = SummedGradient.of(parts);
            GradientWorker.Apply apply = workers.get(busy).expectMessageClass(GradientWorker.Apply.class,
                    STEP_TIMEOUT);
            assertEquals(1, apply.step());
            for (int g = 0; g < expected.values().size(); g++) {
                assertArrayEquals(expected.values().get(g), apply.sum().values().get(g), "summed gradient " + g);
            }
            RunSupervisor.ExchangeDone exchange = supervisor.expectMessageClass(RunSupervisor.ExchangeDone.class);
            assertEquals(1, exchange.workers());
            StepReport report = supervisor.expectMessageClass(RunSupervisor.StepDone.class, STEP_TIMEOUT).report();
            assertEquals(own.applyStep(expected, apply.lr()).loss(), report.loss());
        }
    }

    /** Replies to {@code compute} with the parts {@code session} computes for its micro-batches. */
    private static void answer(TrainingSession session, GradientWorker.Compute compute, long tokens) {
        List<MicroBatchGradient> parts = new ArrayList<>();
        for (GradientWorker.IndexedBatch b : compute.microBatches()) {
            parts.add(session.gradientOf(b.batch(), b.index(), tokens, compute.choices()));
        }
        compute.replyTo().tell(new GradientWorker.Computed(compute.step(), parts, "", 0.25));
    }

    @Test
    void aCheckpointTrainedOnAnotherBaseStorageIsRefusedNamingBoth() {
        RunPlan nf4 = TestPlans.stories260K(dir, "quantized", "model.quantize=nf4");
        SparseFineTuning deltas = new SparseFineTuning(nf4.model().fingerprint(), nf4.method().name(), Map.of(),
                List.of());
        SavedCheckpoint dense = new CheckpointStore(dir.resolve("dense-run"), 0).write("dense-run", 0, deltas, "none",
                new MethodState(nf4.method().name(), 2, Map.of()), DataStreamer.start(nf4.settings()));
        String refused = assertThrows(IllegalStateException.class, () -> TrainerActor.requireResumable(dense, nf4))
                .getMessage();
        assertTrue(refused.contains("model.quantize = none") && refused.contains("model.quantize = nf4"), refused);
        TrainerActor.requireResumable(new CheckpointStore(dir.resolve("nf4-run"), 0).write("nf4-run", 0, deltas, "nf4",
                new MethodState(nf4.method().name(), 2, Map.of()), DataStreamer.start(nf4.settings())), nf4);
    }

    @Test
    void aCheckpointThatReadTheFileInAnotherOrderIsRefused() {
        RunPlan shuffled = TestPlans.stories260K(dir, "shuffled", "data.shuffle=true");
        assertTrue(shuffled.shuffled());
        SparseFineTuning deltas = new SparseFineTuning(shuffled.model().fingerprint(), shuffled.method().name(),
                Map.of(), List.of());
        SavedCheckpoint inFileOrder = new CheckpointStore(dir.resolve("file-order-run"), 0).write("file-order-run", 0,
                deltas, "none", new MethodState(shuffled.method().name(), 2, Map.of()),
                StreamPosition.InFile.start(0, false));
        String refused = assertThrows(IllegalStateException.class,
                () -> TrainerActor.requireResumable(inFileOrder, shuffled)).getMessage();
        assertTrue(refused.contains("in file order") && refused.contains("data.shuffle = false"), refused);
    }
}
