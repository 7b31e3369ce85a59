package dev.spiel4j.data;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BatchesTest {

    private final TokenizedExample a = new TokenizedExample("a", new int[]{1, 10, 11, 12, 2}, 3);
    private final TokenizedExample b = new TokenizedExample("b", new int[]{1, 20, 2}, 1);

    @Test
    void rowsAreShiftedByOneAndPaddedToTheLongest() {
        Batch batch = Batches.pad(List.of(a, b), 0);
        assertEquals(2, batch.size());
        assertEquals(4, batch.seqLen());
        assertArrayEquals(new long[]{1, 10, 11, 12, /**/ 1, 20, 0, 0}, batch.inputs());
        assertArrayEquals(new long[]{10, 11, 12, 2, /**/ 20, 2, 0, 0}, batch.targets());
        assertArrayEquals(new float[]{0, 0, 1, 1, /**/ 1, 1, 0, 0}, batch.lossMask());
        assertArrayEquals(new float[]{1, 1, 1, 1, /**/ 1, 1, 0, 0}, batch.attentionMask());
        assertEquals(List.of("a", "b"), batch.exampleIds());
        assertEquals(a.lossTokens() + b.lossTokens(), batch.lossTokens());
    }

    @Test
    void fixedSeqLenPadsFurtherAndRefusesLongerRows() {
        Batch batch = Batches.pad(List.of(b), 6);
        assertEquals(6, batch.seqLen());
        assertArrayEquals(new long[]{1, 20, 0, 0, 0, 0}, batch.inputs());
        var e = assertThrows(IllegalArgumentException.class, () -> Batches.pad(List.of(a, b), 3));
        assertTrue(e.getMessage().contains("example a has 4 positions"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Batches.pad(List.of(), 0));
    }
}
