package dev.spiel4j.optim;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** SM3 and AdamW against numbers worked out by hand (see the comments). */
class OptimizerTest {

    @Test
    void sm3OnA3x4ExampleMatchesHandComputation() {
        // Slots at (0,0) (0,2) (1,1) (2,3) (2,0) of a 3x4 matrix; lr 0.1, no weight decay, eps ~ 0.
        long[] idx = {0, 2, 5, 11, 8};
        float[] phi = new float[5];
        Sm3 sm3 = new Sm3(3, 4, 1e-30f, 0f);
        // Step 1: nu = g^2 = [1, 4, 9, .25, 2.25]; every slot moves by -0.1 * g / |g| = -0.1.
        sm3.step(idx, phi, new float[]{1, 2, 3, 0.5f, 1.5f}, 0.1f, 1f);
        assertArrayEquals(new float[]{-0.1f, -0.1f, -0.1f, -0.1f, -0.1f}, phi, 1e-7f);
        assertArrayEquals(new float[]{4, 9, 2.25f}, sm3.rowAccumulator(), 1e-6f);          // row maxima
        assertArrayEquals(new float[]{2.25f, 9, 4, 0.25f}, sm3.columnAccumulator(), 1e-6f); // column maxima
        // Step 2, g = [2, 1, 1, 1, 1]: nu = min(r, c) + g^2 = [2.25+4, 4+1, 9+1, .25+1, 2.25+1]
        //   = [6.25, 5, 10, 1.25, 3.25]; updates -0.1 g / sqrt(nu) = [-.08, -.0447214, -.0316228, -.0894427, -.0554700]
        sm3.step(idx, phi, new float[]{2, 1, 1, 1, 1}, 0.1f, 1f);
        assertArrayEquals(new float[]{-0.18f, -0.1447214f, -0.1316228f, -0.1894427f, -0.1554700f}, phi, 1e-6f);
        assertArrayEquals(new float[]{6.25f, 10, 3.25f}, sm3.rowAccumulator(), 1e-6f);
        assertArrayEquals(new float[]{6.25f, 10, 5, 1.25f}, sm3.columnAccumulator(), 1e-6f);
    }

    @Test
    void sm3WeightDecayIsDecoupledAndGradScaleApplies() {
        long[] idx = {1};
        float[] phi = {2f};
        Sm3 sm3 = new Sm3(1, 2, 1e-30f, 0.5f);
        // g = 4 scaled by 0.5 -> 2; nu = 4; phi = 2 * (1 - 0.1 * 0.5) - 0.1 * 2 / 2 = 1.9 - 0.1 = 1.8
        sm3.step(idx, phi, new float[]{4f}, 0.1f, 0.5f);
        assertEquals(1.8f, phi[0], 1e-6f);
        assertArrayEquals(new float[]{0, 4}, sm3.columnAccumulator(), 0f, "untouched column keeps its value");
    }

    @Test
    void adamWUsesPerElementAgesAndSeeds() {
        AdamW adam = new AdamW(2, 0.9f, 0.999f, 1e-8f, 0.1f);
        adam.seed(1, 0.3f, 0.04f); // element 1 grown with seeded moments
        float[] p = {1f, 1f};
        adam.step(p, new float[]{0.5f, 0.5f}, 0.01f, 1f);
        // Element 0, age 1: m = .05, v = .00025, mHat = .5, vHat = .25 -> step 1; p = 1 * (1 - .001) - .01 = .989
        // Element 1, age 1: m = .27 + .05 = .32, v = .03996 + .00025 = .04021; mHat = 3.2, vHat = 40.21,
        //   3.2 / 6.3411355 = .5046417; p = .999 - .005046417 = .9939536
        assertArrayEquals(new float[]{0.989f, 0.9939536f}, p, 1e-6f);
        assertArrayEquals(new int[]{1, 1}, adam.ages());
        adam.seed(0, 0f, 0f);
        adam.step(p, new float[]{0.5f, 0.5f}, 0.01f, 1f);
        assertArrayEquals(new int[]{1, 2}, adam.ages(), "a reseeded element restarts its age, others keep counting");
        // Element 0 restarted from zero moments at age 1: again exactly one unit step.
        assertEquals(0.989f * 0.999f - 0.01f, p[0], 1e-6f);
    }
}
