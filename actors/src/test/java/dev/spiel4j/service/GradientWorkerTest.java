package dev.spiel4j.service;

import dev.spiel4j.data.Batch;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.sft.DropGrowSelector;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.train.MicroBatchGradient;
import dev.spiel4j.train.SummedGradient;
import dev.spiel4j.train.TrainingSession;
import org.apache.pekko.actor.testkit.typed.annotations.JUnit5TestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.JUnit5TestKitBuilder;
import org.apache.pekko.actor.testkit.typed.javadsl.TestKitJUnit5Extension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A gradient worker alone, the coordinator played by a session in the test and probes: synced to the coordinator's
 * state it computes the parts the coordinator would compute itself, and after applying their sums (a reselection
 * included) its state digest is the coordinator's; a replica that cannot be kept exact leaves.
 */
@ExtendWith(TestKitJUnit5Extension.class)
class GradientWorkerTest {
    private static final Duration STEP_TIMEOUT = Duration.ofSeconds(30);
    @JUnit5TestKit
    ActorTestKit kit = new JUnit5TestKitBuilder().build();

    @TempDir
    Path dir;

    @Test
    void computesTheCoordinatorsPartsAndStaysItsReplicaThroughAReselection() throws IOException {
        RunPlan plan = TestPlans.stories260K(dir, "worker-test", "batch.size=2", "method.name=spiel-ma",
                "method.reselection-interval=2", "method.selection-steps=1", "schedule.steps=4", "device=cpu");
        try (TrainingSession coordinator = TrainingSession.open(plan.model(), plan.placement(), plan.trainingSpec())) {
            coordinator.deferSelections();
            ActorRef<GradientWorker.Command> worker = kit.spawn(GradientWorker.create(Optional.empty(), kit.createTestProbe(GradientWorker.Synced.class).getRef()));
            worker.tell(new GradientWorker.Sync(plan.settings().rendered(), plan.model().fingerprint(),
                    plan.totalSteps(), coordinator.state()));
            TestProbe<GradientWorker.Computed> computed = kit.createTestProbe();
            TestProbe<GradientWorker.Digest> digests = kit.createTestProbe();
            int reselections = 0;
            for (int step = 1; step <= 3; step++) {
                List<Batch> batches = List.of(TestPlans.batch(plan, 4 * step, 4 * step + 2),
                        TestPlans.batch(plan, 4 * step + 2, 4 * step + 4));
                long tokens = batches.get(0).lossTokens() + batches.get(1).lossTokens();
                // asked for micro-batch 1 before 0: each part keeps its index
                worker.tell(new GradientWorker.Compute(step, tokens, List.of(
                        new GradientWorker.IndexedBatch(1, batches.get(1)),
                        new GradientWorker.IndexedBatch(0, batches.get(0))), List.of(), false, computed.getRef()));
                GradientWorker.Computed answer = computed.expectMessageClass(GradientWorker.Computed.class,
                        STEP_TIMEOUT);
                assertEquals("", answer.error());
                assertEquals(step, answer.step());
                List<MicroBatchGradient> parts = List.of(answer.parts().get(1), answer.parts().get(0));
                for (int m = 0; m < 2; m++) {
                    MicroBatchGradient own = coordinator.gradientOf(batches.get(m), m, tokens, List.of());
                    assertEquals(m, parts.get(m).index());
                    for (int g = 0; g < own.values().size(); g++) {
                        assertArrayEquals(own.values().get(g), parts.get(m).values().get(g), "gradient " + g);
                    }
                }
                SummedGradient sum = SummedGradient.of(parts);
                float lr = plan.learningRate().at(step);
                coordinator.applyStep(sum, lr);
                worker.tell(new GradientWorker.Apply(step, lr, sum));
                if (!coordinator.pendingSelection().isEmpty()) {
                    // the selector decides once; the worker carries out the same decisions
                    List<SelectionDecision> decisions = coordinator.pendingSelection().stream()
                            .map(DropGrowSelector::decide).toList();
                    coordinator.applySelection(decisions);
                    worker.tell(new GradientWorker.ApplySelection(step, decisions));
                    reselections++;
                }
                worker.tell(new GradientWorker.ReportDigest(step, digests.getRef()));
                GradientWorker.Digest digest = digests.expectMessageClass(GradientWorker.Digest.class, STEP_TIMEOUT);
                assertEquals(new GradientWorker.Digest(step, coordinator.state().digest()), digest);
            }
            assertTrue(reselections > 0, "the steps include a reselection");
        }
    }

    @Test
    void aWorkerReSyncedWhileAReselectionWaitsForItsDecisionsStartsOverFromTheSync() throws IOException {
        RunPlan plan = TestPlans.stories260K(dir, "worker-resync", "batch.size=2", "method.name=spiel-ma",
                "method.reselection-interval=2", "method.selection-steps=1", "schedule.steps=4", "device=cpu");
        try (TrainingSession coordinator = TrainingSession.open(plan.model(), plan.placement(), plan.trainingSpec())) {
            coordinator.deferSelections();
            ActorRef<GradientWorker.Command> worker = kit.spawn(GradientWorker.create(Optional.empty(), kit.createTestProbe(GradientWorker.Synced.class).getRef()));
            TestProbe<GradientWorker.Computed> computed = kit.createTestProbe();
            worker.tell(new GradientWorker.Sync(plan.settings().rendered(), plan.model().fingerprint(),
                    plan.totalSteps(), coordinator.state()));
            int step = 0;
            MethodState before;
            do {
                // steps until one reselects; the worker applies it but never gets its decisions
                before = coordinator.state();
                step++;
                Batch batch = TestPlans.batch(plan, 2 * step, 2 * step + 2);
                SummedGradient sum = SummedGradient.of(List.of(coordinator.gradientOf(batch, 0, batch.lossTokens(),
                        List.of())));
                coordinator.applyStep(sum, 1e-3f);
                worker.tell(new GradientWorker.Apply(step, 1e-3f, sum));
            } while (coordinator.pendingSelection().isEmpty());
            // the coordinator restarted from the state before that step: the worker follows it there
            worker.tell(new GradientWorker.Sync(plan.settings().rendered(), plan.model().fingerprint(),
                    plan.totalSteps(), before));
            Batch batch = TestPlans.batch(plan, 0, 2);
            worker.tell(new GradientWorker.Compute(step, batch.lossTokens(), List.of(
                    new GradientWorker.IndexedBatch(0, batch)), List.of(), false, computed.getRef()));
            GradientWorker.Computed answer = computed.expectMessageClass(GradientWorker.Computed.class, STEP_TIMEOUT);
            assertEquals("", answer.error());
            assertEquals(1, answer.parts().size());
        }
    }

    @Test
    void aWorkerAskedForAStepItIsNotAtLeaves() throws IOException {
        RunPlan plan = TestPlans.stories260K(dir, "worker-gap", "batch.size=2", "method.name=lora",
                "schedule.steps=4", "device=cpu");
        try (TrainingSession coordinator = TrainingSession.open(plan.model(), plan.placement(), plan.trainingSpec())) {
            ActorRef<GradientWorker.Command> worker = kit.spawn(GradientWorker.create(Optional.empty(), kit.createTestProbe(GradientWorker.Synced.class).getRef()));
            TestProbe<GradientWorker.Computed> computed = kit.createTestProbe();
            worker.tell(new GradientWorker.Sync(plan.settings().rendered(), plan.model().fingerprint(),
                    plan.totalSteps(), coordinator.state()));
            // it missed step 1's sum: its replica could only drift, so it stops and the coordinator loses it
            worker.tell(new GradientWorker.Compute(2, 10, List.of(new GradientWorker.IndexedBatch(0,
                    TestPlans.batch(plan, 0, 2))), List.of(), false, computed.getRef()));
            computed.expectTerminated(worker, STEP_TIMEOUT);
        }
    }

    @Test
    void aWorkerWhoseModelIsAnotherBaseRefusesToJoinTheRun() throws IOException {
        RunPlan plan = TestPlans.stories260K(dir, "worker-base", "method.name=lora", "schedule.steps=4",
                "device=cpu");
        ActorRef<GradientWorker.Command> worker = kit.spawn(GradientWorker.create(Optional.empty(), kit.createTestProbe(GradientWorker.Synced.class).getRef()));
        TestProbe<GradientWorker.Computed> probe = kit.createTestProbe();
        try (TrainingSession coordinator = TrainingSession.open(plan.model(), plan.placement(), plan.trainingSpec())) {
            worker.tell(new GradientWorker.Sync(plan.settings().rendered(), "sha256:another-base", plan.totalSteps(),
                    coordinator.state()));
        }
        probe.expectTerminated(worker, STEP_TIMEOUT);
    }
}
