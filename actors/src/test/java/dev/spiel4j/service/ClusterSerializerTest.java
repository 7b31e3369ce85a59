package dev.spiel4j.service;

import dev.spiel4j.data.Batch;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.train.MicroBatchGradient;
import dev.spiel4j.train.SummedGradient;
import org.apache.pekko.actor.testkit.typed.annotations.JUnit5TestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.JUnit5TestKitBuilder;
import org.apache.pekko.actor.testkit.typed.javadsl.TestKitJUnit5Extension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * Every cluster message through Pekko's serialization, as it crosses between nodes: the bound serializer is the
 * Protobuf one, and what comes back equals what went in (float bits, token ids, state bytes, actor references).
 */
@ExtendWith(TestKitJUnit5Extension.class)
class ClusterSerializerTest {
    @JUnit5TestKit
    ActorTestKit kit = new JUnit5TestKitBuilder().build();

    private <T> T roundTrip(T message) throws Exception {
        Serialization serialization = SerializationExtension.get(Adapter.toClassic(kit.system()));
        assertInstanceOf(ClusterSerializer.class, serialization.findSerializerFor(message));
        byte[] bytes = serialization.serialize(message).get();
        @SuppressWarnings("unchecked")
        T back = (T) serialization.deserialize(bytes, serialization.findSerializerFor(message).identifier(),
                Serializers.manifestFor(serialization.findSerializerFor(message), message)).get();
        return back;
    }

    @Test
    void gradientsTravelBitForBitNaNAndSignedZeroIncluded() throws Exception {
        float[] values = {1.5f, -0f, Float.NaN, Float.MIN_VALUE, -3.25e-38f};
        MicroBatchGradient part = new MicroBatchGradient(2, 12.75, 9, List.of(new long[]{5}, new long[]{1, 2}),
                List.of(values, new float[]{7f, 8f}), List.of(new float[]{0.25f}, new float[0]),
                List.of(new long[]{3, 1L << 40}));
        GradientWorker.Computed back = roundTrip(new GradientWorker.Computed(4, List.of(part), "", 0.125));
        assertEquals(4, back.step());
        assertEquals(0.125, back.computeSeconds());
        MicroBatchGradient p = back.parts().get(0);
        assertEquals(2, p.index());
        assertEquals(12.75, p.nllSum());
        assertEquals(9, p.lossTokens());
        assertArrayEquals(new long[]{1, 2}, p.shapes().get(1));
        for (int i = 0; i < values.length; i++) {
            assertEquals(Float.floatToRawIntBits(values[i]), Float.floatToRawIntBits(p.values().get(0)[i]));
        }
        assertArrayEquals(new float[]{0.25f}, p.statistics().get(0));
        assertEquals(0, p.statistics().get(1).length);
        assertArrayEquals(new long[]{3, 1L << 40}, p.choices().get(0));

        GradientWorker.Apply apply = roundTrip(new GradientWorker.Apply(4, 1e-3f,
                new SummedGradient(30.5, 21, List.of(new long[]{5}), List.of(values), List.of(new float[]{1f}),
                        List.of(new long[]{9}))));
        assertArrayEquals(new float[]{1f}, apply.sum().statistics().get(0));
        assertArrayEquals(new long[]{9}, apply.sum().choices().get(0));
        assertEquals(1e-3f, apply.lr());
        assertEquals(21, apply.sum().lossTokens());
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(apply.sum().values().get(0)[1]));
    }

    @Test
    void microBatchesAndTheirReplyAddressTravel() throws Exception {
        TestProbe<GradientWorker.Computed> replyTo = kit.createTestProbe();
        Batch batch = new Batch(2, 2, new long[]{1, 5, 1, 9}, new long[]{5, 6, 9, 0}, new float[]{0, 1, 1, 0},
                new float[]{1, 1, 1, 0}, List.of("data.jsonl:3", "data.jsonl:8"));
        GradientWorker.Compute back = roundTrip(new GradientWorker.Compute(7, 2, List.of(
                new GradientWorker.IndexedBatch(1, batch)), List.of(new long[]{4, 2}), true, replyTo.getRef()));
        assertArrayEquals(new long[]{4, 2}, back.choices().get(0));
        assertEquals(replyTo.getRef(), back.replyTo());
        assertEquals(7, back.step());
        assertEquals(2, back.stepTokens());
        assertEquals(true, back.chaosKill());
        Batch b = back.microBatches().get(0).batch();
        assertEquals(1, back.microBatches().get(0).index());
        assertArrayEquals(batch.inputs(), b.inputs());
        assertArrayEquals(batch.targets(), b.targets());
        assertArrayEquals(batch.lossMask(), b.lossMask());
        assertArrayEquals(batch.attentionMask(), b.attentionMask());
        assertEquals(batch.exampleIds(), b.exampleIds());
    }

    @Test
    void aStateAndItsDigestTravel() throws Exception {
        ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putFloat(1f).putFloat(-2f).putFloat(0.5f)
                .flip();
        MethodState state = new MethodState("spiel-ma", 3, Map.of("m.values",
                new HostTensor("m.values", new long[]{3}, HostDType.F32, data)));
        GradientWorker.Sync back = roundTrip(new GradientWorker.Sync("spiel4j{}", "sha256:base", 40, state));
        assertEquals("spiel4j{}", back.runConfig());
        assertEquals("sha256:base", back.baseFingerprint());
        assertEquals(40, back.totalSteps());
        assertEquals(state.digest(), back.state().digest());

        SelectionDecision decision = new SelectionDecision(new int[]{4, 0}, new long[]{77, 1L << 33},
                new float[]{0.5f, -1f}, new float[]{0.25f, 1f}, 3);
        GradientWorker.ApplySelection selection = roundTrip(new GradientWorker.ApplySelection(3, List.of(decision,
                SelectionDecision.none())));
        assertEquals(3, selection.step());
        SelectionDecision d = selection.decisions().get(0);
        assertArrayEquals(decision.slots(), d.slots());
        assertArrayEquals(decision.newIndices(), d.newIndices());
        assertArrayEquals(decision.seedFirstMoment(), d.seedFirstMoment());
        assertArrayEquals(decision.seedSecondMoment(), d.seedSecondMoment());
        assertEquals(3, d.seedSamples());
        assertEquals(0, selection.decisions().get(1).size());

        TestProbe<GradientWorker.Digest> replyTo = kit.createTestProbe();
        assertEquals(replyTo.getRef(), roundTrip(new GradientWorker.ReportDigest(3, replyTo.getRef())).replyTo());
        assertEquals(new GradientWorker.Digest(3, "ab12"), roundTrip(new GradientWorker.Digest(3, "ab12")));
        assertEquals(new GradientWorker.Leave("the run ended: finished"),
                roundTrip(new GradientWorker.Leave("the run ended: finished")));
    }

    /**
     * A first reselection changes every slot of every matrix: 933,880 on the llama-100M shape at rank 8. Its message
     * is built in one pass (a copy of each array per slot made it quadratic: the coordinator's remote threads spent
     * seconds on it and missed the cluster's heartbeats); with the copies back this test runs for hours.
     */
    @Test
    @Timeout(60)
    void aReselectionOfEverySlotOfALargeModelTravelsWhole() throws Exception {
        int n = 1 << 20;
        int[] slots = new int[n];
        long[] indices = new long[n];
        float[] first = new float[n];
        for (int i = 0; i < n; i++) {
            slots[i] = i;
            indices[i] = 3L * i + (1L << 32);
            first[i] = i * 0.5f;
        }
        SelectionDecision decision = new SelectionDecision(slots, indices, first, new float[n], 2);
        SelectionDecision back = roundTrip(new GradientWorker.ApplySelection(5, List.of(decision))).decisions().get(0);
        assertArrayEquals(slots, back.slots());
        assertArrayEquals(indices, back.newIndices());
        assertArrayEquals(first, back.seedFirstMoment());
        assertArrayEquals(new float[n], back.seedSecondMoment());
    }
}
