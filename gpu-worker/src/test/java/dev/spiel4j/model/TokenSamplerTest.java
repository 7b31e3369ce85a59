package dev.spiel4j.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TokenSamplerTest {
    private static final float[] LOGITS = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.2)};

    private static int[] counts(GenerationConfig config, int draws) {
        TokenSampler sampler = new TokenSampler(config);
        int[] counts = new int[LOGITS.length];
        for (int i = 0; i < draws; i++) {
            counts[sampler.next(LOGITS)]++;
        }
        return counts;
    }

    @Test
    void temperatureOneSamplesTheSoftmax() {
        int[] c = counts(new GenerationConfig(1, 1f, 1f, 11), 20000);
        assertEquals(0.5, c[0] / 20000.0, 0.015);
        assertEquals(0.3, c[1] / 20000.0, 0.015);
        assertEquals(0.2, c[2] / 20000.0, 0.015);
    }

    /** top-p 0.6 keeps {0.5, 0.3} (0.5 alone is below 0.6) and renormalises them to 5/8 and 3/8. */
    @Test
    void topPKeepsTheSmallestNucleusAndRenormalises() {
        int[] c = counts(new GenerationConfig(1, 1f, 0.6f, 12), 20000);
        assertEquals(0, c[2]);
        assertEquals(0.625, c[0] / 20000.0, 0.015);
    }

    /** Temperature 0.5 squares the probabilities: 25 : 9 : 4. */
    @Test
    void temperatureSharpens() {
        int[] c = counts(new GenerationConfig(1, 0.5f, 1f, 13), 20000);
        assertEquals(25 / 38.0, c[0] / 20000.0, 0.015);
        assertEquals(4 / 38.0, c[2] / 20000.0, 0.015);
    }

    @Test
    void greedyTakesTheFirstMaximum() {
        assertEquals(1, new TokenSampler(GenerationConfig.greedy(1)).next(new float[]{1, 3, 3, 2}));
    }

    @Test
    void refusesBadSettings() {
        assertThrows(IllegalArgumentException.class, () -> new GenerationConfig(-1, 0, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new GenerationConfig(1, -0.1f, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new GenerationConfig(1, 1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new GenerationConfig(1, Float.NaN, 1, 0));
    }
}
