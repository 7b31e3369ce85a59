package dev.spiel4j.data;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ShuffledSamplerTest {
    private final List<Integer> items = IntStream.range(0, 50).boxed().toList();

    @Test
    void eachEpochIsASeededPermutation() {
        ShuffledSampler<Integer> s = new ShuffledSampler<>(items, 7);
        int[] e0 = s.order(0);
        int[] sorted = e0.clone();
        Arrays.sort(sorted);
        assertArrayEquals(IntStream.range(0, 50).toArray(), sorted);
        assertArrayEquals(e0, new ShuffledSampler<>(items, 7).order(0), "same seed, same order");
        assertFalse(Arrays.equals(e0, s.order(1)), "epochs differ");
        assertFalse(Arrays.equals(e0, new ShuffledSampler<>(items, 8).order(0)), "seeds differ");
        assertFalse(Arrays.equals(e0, IntStream.range(0, 50).toArray()), "actually shuffled");
    }

    @Test
    void drawingFromASavedPositionContinuesTheUninterruptedSequence() {
        ShuffledSampler<Integer> s = new ShuffledSampler<>(items, 3);
        List<Integer> straight = s.draw(ShufflePosition.START, 170).items();
        List<Integer> resumed = new ArrayList<>();
        ShufflePosition pos = ShufflePosition.START;
        for (int n : new int[]{8, 8, 40, 1, 50, 63}) {
            // a fresh sampler, as after a restart
            ShuffledSampler.Draw<Integer> d = new ShuffledSampler<>(items, 3).draw(pos, n);
            resumed.addAll(d.items());
            pos = d.next();
        }
        assertEquals(straight, resumed);
        assertEquals(new ShufflePosition(3, 20), pos);
        // every epoch holds every item exactly once
        assertEquals(items, straight.subList(50, 100).stream().sorted().toList());
        assertThrows(IllegalArgumentException.class, () -> s.draw(new ShufflePosition(0, 51), 1));
    }
}
