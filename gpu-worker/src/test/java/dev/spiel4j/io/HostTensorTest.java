package dev.spiel4j.io;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class HostTensorTest {

    @Test
    void widensHalfAndBfloat16Exactly() {
        float[] values = {0f, 1f, -2.5f, 65504f, 6.1035156e-5f, 5.9604645e-8f};
        short[] halves = {0x0000, 0x3C00, (short) 0xC100, 0x7BFF, 0x0400, 0x0001};
        ByteBuffer f16 = ByteBuffer.allocate(2 * halves.length).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer bf16 = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < values.length; i++) {
            f16.putShort(halves[i]);
            bf16.putShort((short) (Float.floatToIntBits(values[i]) >>> 16));
        }
        float[] fromHalf = new HostTensor("h", new long[]{values.length}, HostDType.F16, f16.flip()).toFloats();
        float[] fromBf16 = new HostTensor("b", new long[]{values.length}, HostDType.BF16, bf16.flip()).toFloats();
        for (int i = 0; i < values.length; i++) {
            assertEquals(values[i], fromHalf[i], 0f, "f16 element " + i);
            float truncated = Float.intBitsToFloat(Float.floatToIntBits(values[i]) & 0xFFFF0000);
            assertEquals(truncated, fromBf16[i], 0f, "bf16 element " + i);
        }
    }

    @Test
    void refusesBytesThatDoNotMatchTheShape() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> new HostTensor("w", new long[]{2, 3}, HostDType.F32, ByteBuffer.allocate(20)));
        assertEquals("tensor 'w' [2, 3] F32 needs 24 bytes but has 20", e.getMessage());
    }
}
