package dev.spiel4j.service;

import dev.spiel4j.peft.sft.CandidateStats;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.peft.sft.SelectionRequest;
import org.apache.pekko.actor.testkit.typed.annotations.JUnit5TestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.JUnit5TestKitBuilder;
import org.apache.pekko.actor.testkit.typed.javadsl.TestKitJUnit5Extension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** The selector actor answers each trainer's request with the drop/grow rules' decision, keeping nothing between. */
@ExtendWith(TestKitJUnit5Extension.class)
class SelectorTest {
    @JUnit5TestKit
    ActorTestKit kit = new JUnit5TestKitBuilder().build();

    @Test
    void answersAccumulatedGradientRequestsByTheDropAndGrowRules() {
        ActorRef<Selector.Command> selector = kit.spawn(Selector.create());
        TestProbe<SelectionDecision> trainer = kit.createTestProbe();
        // slots 1 and 3 hold the smallest |delta|; candidates 7 and 30 have the largest |mean gradient|
        CandidateStats stats = new CandidateStats(new long[]{3, 7, 20, 30}, new float[]{0.2f, -0.8f, 0.1f, 0.5f},
                new float[]{0.04f, 0.64f, 0.01f, 0.25f}, 2);
        selector.tell(new Selector.Decide(new SelectionRequest.AccumulatedGradient("q", 10, 2,
                new long[]{0, 5, 9, 12}, new float[]{0.5f, 0.01f, 0.3f, 0.02f}, stats), trainer.getRef()));

        SelectionDecision d = trainer.receiveMessage();
        assertArrayEquals(new int[]{1, 3}, d.slots());
        assertArrayEquals(new long[]{7, 30}, d.newIndices());
        assertArrayEquals(new float[]{-0.4f, 0.25f}, d.seedFirstMoment());
        assertArrayEquals(new float[]{0.32f, 0.125f}, d.seedSecondMoment());
    }

    @Test
    void answersEachTrainerItsOwnDecision() {
        ActorRef<Selector.Command> selector = kit.spawn(Selector.create());
        TestProbe<SelectionDecision> first = kit.createTestProbe();
        TestProbe<SelectionDecision> second = kit.createTestProbe();
        // a 2 x 3 matrix: row 1 and column 0 have the largest SM3 accumulators, so position 1 * 3 + 0 = 3 grows
        SelectionRequest.MomentumApproximation ma = new SelectionRequest.MomentumApproximation("k", 4, 1,
                new long[]{0, 1}, new float[]{0.1f, 0.2f}, new float[]{1f, 3f}, new float[]{2f, 1f, 0.5f});
        SelectionRequest.MomentumApproximation none = new SelectionRequest.MomentumApproximation("v", 4, 0,
                new long[]{0, 1}, new float[]{0.1f, 0.2f}, new float[]{1f, 3f}, new float[]{2f, 1f, 0.5f});
        selector.tell(new Selector.Decide(ma, first.getRef()));
        selector.tell(new Selector.Decide(none, second.getRef()));

        SelectionDecision d = first.receiveMessage();
        assertArrayEquals(new int[]{0}, d.slots());
        assertArrayEquals(new long[]{3}, d.newIndices());
        assertArrayEquals(new float[]{0f}, d.seedFirstMoment());
        assertArrayEquals(new int[0], second.receiveMessage().slots());
        first.expectNoMessage();
    }
}
