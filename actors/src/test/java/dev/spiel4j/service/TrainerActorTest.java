package dev.spiel4j.service;

import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.data.Batch;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.sft.DropGrowSelector;
import dev.spiel4j.peft.sft.SelectionDecision;
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
