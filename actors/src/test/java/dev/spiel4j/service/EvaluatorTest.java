package dev.spiel4j.service;

import dev.spiel4j.peft.MethodState;
import dev.spiel4j.proto.v1.EvalResult;
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
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The evaluator alone, the publisher and the supervisor played by probes: it scores exactly the snapshot it is sent
 * (the same state twice gives the same bits, a trained one another loss), reports each result to both, and answers a
 * drain once what was asked before it is done.
 */
@ExtendWith(TestKitJUnit5Extension.class)
class EvaluatorTest {
    @JUnit5TestKit
    ActorTestKit kit = new JUnit5TestKitBuilder().build();

    @TempDir
    Path dir;

    @Test
    void scoresTheSnapshotItIsSentAndReportsItToThePublisherAndTheSupervisor() throws IOException {
        RunPlan plan = TestPlans.stories260K(dir, "evaluator-test",
                "schedule.steps=2",
                "eval.holdout-examples=4",
                "eval.max-examples=4");
        MethodState untrained;
        MethodState trained;
        try (TrainingSession session = TrainingSession.open(plan.model(), plan.placement(), plan.trainingSpec())) {
            untrained = session.state();
            session.step(List.of(TestPlans.batch(plan, 0, 4)), 0.05f);
            trained = session.state();
        }

        TestProbe<Publisher.Command> publisher = kit.createTestProbe();
        TestProbe<RunSupervisor.Command> supervisor = kit.createTestProbe();
        TestProbe<Evaluator.Drained> drained = kit.createTestProbe();
        ActorRef<Evaluator.Command> evaluator = kit.spawn(Evaluator.create(plan, publisher.getRef(),
                supervisor.getRef()));
        evaluator.tell(new Evaluator.Evaluate(0, untrained));
        evaluator.tell(new Evaluator.Evaluate(1, trained));
        evaluator.tell(new Evaluator.Evaluate(2, untrained));
        evaluator.tell(new Evaluator.Drain(drained.getRef()));

        double[] losses = new double[3];
        for (int step = 0; step < 3; step++) {
            EvalResult published = publisher.expectMessageClass(Publisher.PublishEvent.class).event().getEval();
            RunSupervisor.EvalDone done = supervisor.expectMessageClass(RunSupervisor.EvalDone.class);
            assertEquals(step, done.step());
            assertEquals(step, published.getStep());
            assertEquals(done.loss(), published.getLoss());
            assertEquals(4, published.getExamples());
            assertTrue(Double.isFinite(done.loss()) && done.loss() > 0, "loss " + done.loss());
            losses[step] = done.loss();
        }
        drained.expectMessageClass(Evaluator.Drained.class);
        assertEquals(Double.doubleToRawLongBits(losses[0]), Double.doubleToRawLongBits(losses[2]),
                "the same snapshot scores the same");
        assertNotEquals(losses[0], losses[1], "a trained snapshot scores differently");
    }
}
