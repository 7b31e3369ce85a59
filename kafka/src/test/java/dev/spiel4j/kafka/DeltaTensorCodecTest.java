package dev.spiel4j.kafka;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.spiel4j.checkpoint.DeltaTensor;
import org.junit.jupiter.api.Test;

class DeltaTensorCodecTest {

    @Test
    void smallMatrixUsesInt32IndicesAndRoundTrips() throws Exception {
        DeltaTensor tensor = new DeltaTensor("model.layers.0.self_attn.q_proj", 64, 64,
                new long[] {0, 17, 4095}, new float[] {0.5f, -1e-7f, Float.MIN_VALUE});
        var message = DeltaTensorCodec.toProto(tensor);
        assertEquals(3, message.getIndices32Count());
        assertEquals(0, message.getIndices64Count());
        DeltaTensor back = DeltaTensorCodec.fromProto(
                dev.spiel4j.proto.v1.DeltaTensor.parseFrom(message.toByteArray()));
        assertEquals(tensor.module(), back.module());
        assertEquals(64, back.rows());
        assertArrayEquals(tensor.indices(), back.indices());
        assertArrayEquals(tensor.values(), back.values());
    }

    @Test
    void matrixOfTwoToThe31ElementsOrMoreUsesInt64Indices() {
        long last = 65536L * 32768 - 1; // 2^31 elements: the last index does not fit an int
        DeltaTensor tensor = new DeltaTensor("lm", 65536, 32768, new long[] {last}, new float[] {1f});
        var message = DeltaTensorCodec.toProto(tensor);
        assertEquals(0, message.getIndices32Count());
        assertEquals(last, message.getIndices64(0));
        assertEquals(last, DeltaTensorCodec.fromProto(message).indices()[0]);
    }

    @Test
    void inconsistentMessagesAreRefusedNamingTheModule() {
        var both = dev.spiel4j.proto.v1.DeltaTensor.newBuilder().setModule("m.q").setRows(4).setCols(4)
                .addIndices32(1).addIndices64(2).addValues(1).addValues(2).build();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DeltaTensorCodec.fromProto(both))
                .getMessage().contains("'m.q' uses both"));
        var mismatch = dev.spiel4j.proto.v1.DeltaTensor.newBuilder().setModule("m.k").setRows(4).setCols(4)
                .addIndices32(1).build();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DeltaTensorCodec.fromProto(mismatch))
                .getMessage().contains("m.k"));
        var outside = dev.spiel4j.proto.v1.DeltaTensor.newBuilder().setModule("m.v").setRows(4).setCols(4)
                .addIndices32(16).addValues(1).build();
        assertThrows(IllegalArgumentException.class, () -> DeltaTensorCodec.fromProto(outside));
    }
}
