package dev.spiel4j.service;

import dev.spiel4j.config.RunSettings;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.ExampleEncoder;
import dev.spiel4j.data.TokenizedData;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.io.LoadedModel;
import dev.spiel4j.io.ModelLoader;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.proto.v1.EvalResult;
import dev.spiel4j.train.TrainingSession;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
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
class EvaluatorTest {
    private static final ActorTestKit KIT = ActorTestKit.create();

    @TempDir
    Path dir;

    @AfterAll
    static void stop() {
        KIT.shutdownTestKit();
    }

    @Test
    void scoresTheSnapshotItIsSentAndReportsItToThePublisherAndTheSupervisor() throws IOException {
        Path data = SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl");
        RunSettings settings = RunSettings.from(RunSettings.load(null, List.of(
                "run.id=evaluator-test",
                "run.dir=\"" + dir.resolve("runs") + "\"",
                "model.path=\"" + SharedAssets.file("model/stories260K.gguf") + "\"",
                "data.train=\"" + data + "\"",
                "data.seq-len=32",
                "schedule.steps=2",
                "eval.holdout-examples=4",
                "eval.max-examples=4",
                "device=cpu")));
        LoadedModel model = ModelLoader.load(settings.model().path());
        RunPlan plan = RunPlan.of(settings, model);
        MethodState untrained;
        MethodState trained;
        try (TrainingSession session = TrainingSession.open(plan.model(), plan.placement(), plan.trainingSpec())) {
            untrained = session.state();
            List<TokenizedExample> examples = TokenizedData.load(data,
                    new ExampleEncoder(model.tokenizer(), 33, ExampleEncoder.Overflow.TRUNCATE)).examples();
            session.step(List.of(Batches.pad(examples.subList(0, 4), 32)), 0.05f);
            trained = session.state();
        }

        TestProbe<Publisher.Command> publisher = KIT.createTestProbe();
        TestProbe<RunSupervisor.Command> supervisor = KIT.createTestProbe();
        TestProbe<Evaluator.Drained> drained = KIT.createTestProbe();
        ActorRef<Evaluator.Command> evaluator = KIT.spawn(Evaluator.create(plan, publisher.getRef(),
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
