package dev.spiel4j.optim.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.optim.OptimizerSettings;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine's SM3 and AdamW against numbers worked out by hand (see the comments) and against the host reference
 * implementations ({@link HostSm3}, {@link HostAdamW}) over many random steps.
 *
 * <p>What may differ from the reference, and by how much (u = 2^-24, float32's unit roundoff): the optimizer state
 * (m, v, ages; SM3's nu and accumulators) is the same sequence of float32 operations on both sides and must match
 * bit for bit. The parameter update differs: the reference forms the step {@code U} (AdamW:
 * {@code lr mHat / (sqrt(vHat) + eps)}, SM3: {@code lr g / sqrt(nu + eps)}) in double and rounds once, the engine
 * rounds every operation to float32. AdamW's step takes 7 roundings on the engine (the float64 bias corrections
 * rounded to float32, the two quotients, the square root, the sum with eps, the product with lr and the final
 * quotient), so {@code |U_engine - U| <= 7u |U|}; the new value {@code fl(p(1 - lr wd) - U)} adds one rounding on each
 * side, {@code 2u |p|}. Per step, {@code |p_engine - p_ref| <= 8u (|U| + |p|)} covers both with room for the
 * second-order terms. SM3's step takes 2 roundings (square root, quotient): {@code 3u (|U| + |p|)}. To test that
 * bound each step starts both sides from the engine's parameters (errors would otherwise add up over the steps).
 */
class OptimizerTest {
    private static final double U = Math.ulp(1f) / 2;

    @Test
    void sm3OnA3x4ExampleMatchesHandComputation() {
        try (NDManager manager = NDManager.newBaseManager()) {
            // Slots at (0,0) (0,2) (1,1) (2,3) (2,0) of a 3x4 matrix; lr 0.1, no weight decay, eps ~ 0.
            NDArray idx = EngineArrays.of(manager, new long[]{0, 2, 5, 11, 8});
            NDArray phi = manager.zeros(new Shape(5));
            Sm3 sm3 = new Sm3(manager, 3, 4, 1e-30f, 0f);
            // Step 1: nu = g^2 = [1, 4, 9, .25, 2.25]; every slot moves by -0.1 * g / |g| = -0.1.
            sm3.step(idx, phi, EngineArrays.of(manager, new float[]{1, 2, 3, 0.5f, 1.5f}), 0.1f, 1f);
            assertArrayEquals(new float[]{-0.1f, -0.1f, -0.1f, -0.1f, -0.1f}, phi.toFloatArray(), 1e-7f);
            assertArrayEquals(new float[]{4, 9, 2.25f}, sm3.rowAccumulator(), 1e-6f);          // row maxima
            assertArrayEquals(new float[]{2.25f, 9, 4, 0.25f}, sm3.columnAccumulator(), 1e-6f); // column maxima
            // Step 2, g = [2, 1, 1, 1, 1]: nu = min(r, c) + g^2 = [2.25+4, 4+1, 9+1, .25+1, 2.25+1]
            //   = [6.25, 5, 10, 1.25, 3.25]; updates -0.1 g / sqrt(nu) = [-.08, -.0447214, -.0316228, -.0894427, -.0554700]
            sm3.step(idx, phi, EngineArrays.of(manager, new float[]{2, 1, 1, 1, 1}), 0.1f, 1f);
            assertArrayEquals(new float[]{-0.18f, -0.1447214f, -0.1316228f, -0.1894427f, -0.1554700f},
                    phi.toFloatArray(), 1e-6f);
            assertArrayEquals(new float[]{6.25f, 10, 3.25f}, sm3.rowAccumulator(), 1e-6f);
            assertArrayEquals(new float[]{6.25f, 10, 5, 1.25f}, sm3.columnAccumulator(), 1e-6f);
        }
    }

    @Test
    void sm3WeightDecayIsDecoupledAndGradScaleApplies() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray phi = EngineArrays.of(manager, new float[]{2f});
            Sm3 sm3 = new Sm3(manager, 1, 2, 1e-30f, 0.5f);
            // g = 4 scaled by 0.5 -> 2; nu = 4; phi = 2 * (1 - 0.1 * 0.5) - 0.1 * 2 / 2 = 1.9 - 0.1 = 1.8
            sm3.step(EngineArrays.of(manager, new long[]{1}), phi, EngineArrays.of(manager, new float[]{4f}), 0.1f,
                    0.5f);
            assertEquals(1.8f, phi.toFloatArray()[0], 1e-6f);
            assertArrayEquals(new float[]{0, 4}, sm3.columnAccumulator(), 0f, "untouched column keeps its value");
        }
    }

    @Test
    void adamWUsesPerElementAgesAndSeeds() {
        try (NDManager manager = NDManager.newBaseManager()) {
            AdamW adam = new AdamW(manager, new Shape(2), new OptimizerSettings(0.1f, 0.9f, 0.999f, 1e-8f));
            adam.seed(new int[]{1}, new float[]{0.3f}, new float[]{0.04f}, 0); // element 1 grown with seeded moments
            NDArray p = EngineArrays.of(manager, new float[]{1f, 1f});
            NDArray g = EngineArrays.of(manager, new float[]{0.5f, 0.5f});
            adam.step(p, g, 0.01f, 1f);
            // Element 0, age 1: m = .05, v = .00025, mHat = .5, vHat = .25 -> step 1; p = 1 * (1 - .001) - .01 = .989
            // Element 1, age 1: m = .27 + .05 = .32, v = .03996 + .00025 = .04021; mHat = 3.2, vHat = 40.21,
            //   3.2 / 6.3411355 = .5046417; p = .999 - .005046417 = .9939536
            assertArrayEquals(new float[]{0.989f, 0.9939536f}, p.toFloatArray(), 1e-6f);
            assertArrayEquals(new int[]{1, 1}, adam.ages());
            adam.seed(new int[]{0}, new float[]{0f}, new float[]{0f}, 0);
            adam.step(p, g, 0.01f, 1f);
            assertArrayEquals(new int[]{1, 2}, adam.ages(), "a reseeded element restarts its age, others keep counting");
            // Element 0 restarted from zero moments at age 1: again exactly one unit step.
            assertEquals(0.989f * 0.999f - 0.01f, p.toFloatArray()[0], 1e-6f);
        }
    }

    @Test
    void adamWMatchesTheHostReferenceOverManyRandomSteps() {
        SplittableRandom rng = new SplittableRandom(11);
        int n = 301;
        float beta1 = 0.9f;
        float beta2 = 0.999f;
        float eps = 1e-8f;
        float wd = 0.1f;
        try (NDManager manager = NDManager.newBaseManager()) {
            // a 2-d parameter (full fine-tuning's weights are matrices); the reference sees it flat, row-major
            AdamW engine = new AdamW(manager, new Shape(7, 43), new OptimizerSettings(wd, beta1, beta2, eps));
            HostAdamW host = new HostAdamW(n, beta1, beta2, eps, wd);
            float[] p = gaussian(rng, n, 1);
            NDArray params = EngineArrays.of(manager, p, new Shape(7, 43));
            double worst = 0;
            int seeded = 0;
            for (int t = 1; t <= 300; t++) {
                if (t % 17 == 0) { // a reselection: grown elements restart with seeded moments
                    int[] chosen = distinct(rng, n, 1 + rng.nextInt(n / 3));
                    float[] m = gaussian(rng, chosen.length, 1e-3);
                    float[] v = new float[chosen.length];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) (rng.nextDouble() * 1e-5);
                    }
                    int samples = rng.nextInt(8); // 0: a fresh restart; else a phase of that many steps
                    engine.seed(chosen, m, v, samples);
                    for (int i = 0; i < chosen.length; i++) {
                        host.seed(chosen[i], m[i], v[i], samples);
                    }
                    seeded += chosen.length;
                }
                float[] g = gaussian(rng, n, Math.pow(10, -4 + 4 * rng.nextDouble()));
                float lr = (float) (1e-4 + rng.nextDouble() * 1e-2);
                float scale = rng.nextBoolean() ? 1f : (float) rng.nextDouble();
                float[] before = params.toFloatArray();
                float[] expected = before.clone();
                host.step(expected, g, lr, scale);
                engine.step(params, EngineArrays.of(manager, g, new Shape(7, 43)), lr, scale);

                assertArrayEquals(host.firstMoments(), engine.firstMoments(), "m, step " + t);
                assertArrayEquals(host.secondMoments(), engine.secondMoments(), "v, step " + t);
                assertArrayEquals(host.ages(), engine.ages(), "ages, step " + t);
                worst = Math.max(worst, checkWithin(8, before, expected, params.toFloatArray(), 1f - lr * wd, t));
            }
            assertTrue(seeded > 500, "the comparison covered seeded elements: " + seeded);
            assertTrue(Arrays.stream(engine.ages()).distinct().count() > 5, "many different ages");
            System.out.printf("AdamW engine vs host: worst |difference| / (u (|U| + |p|)) = %.3f%n", worst);
        }
    }

    @Test
    void sm3MatchesTheHostReferenceOverManyRandomSteps() {
        SplittableRandom rng = new SplittableRandom(12);
        int rows = 9;
        int cols = 13;
        float eps = 1e-30f;
        float wd = 0.5f;
        try (NDManager manager = NDManager.newBaseManager()) {
            Sm3 engine = new Sm3(manager, rows, cols, eps, wd);
            HostSm3 host = new HostSm3(rows, cols, eps, wd);
            int k = 25; // about a fifth of the 117 positions: rows and columns with several slots and with none
            long[] idx = Arrays.stream(distinct(rng, rows * cols, k)).asLongStream().toArray();
            NDArray params = EngineArrays.of(manager, gaussian(rng, k, 0.1));
            // a new slots array per change of the slots, as SparseDelta makes one: between changes SM3 keeps its grouping
            NDArray slots = EngineArrays.of(manager, idx);
            double worst = 0;
            boolean emptyRow = false;
            boolean crowdedRow = false;
            for (int t = 1; t <= 300; t++) {
                if (t % 10 == 0) { // a reselection moves some slots
                    idx = moveSome(rng, idx, rows * cols);
                    slots = EngineArrays.of(manager, idx);
                }
                if (t == 150) { // every slot in one row and one column: the widest groups possible
                    idx = crossOf(rng, rows, cols, k);
                    slots = EngineArrays.of(manager, idx);
                }
                float[] g = gaussian(rng, k, Math.pow(10, -3 + 3 * rng.nextDouble()));
                float lr = (float) (1e-3 + rng.nextDouble() * 1e-1);
                float scale = rng.nextBoolean() ? 1f : (float) rng.nextDouble();
                float[] before = params.toFloatArray();
                float[] expected = before.clone();
                host.step(idx, expected, g, lr, scale);
                engine.step(slots, params, EngineArrays.of(manager, g), lr, scale);

                assertArrayEquals(host.rowAccumulator(), engine.rowAccumulator(), "rows, step " + t);
                assertArrayEquals(host.columnAccumulator(), engine.columnAccumulator(), "columns, step " + t);
                worst = Math.max(worst, checkWithin(3, before, expected, params.toFloatArray(), 1f - lr * wd, t));
                int[] perRow = new int[rows];
                for (long i : idx) {
                    perRow[(int) (i / cols)]++;
                }
                emptyRow |= Arrays.stream(perRow).anyMatch(c -> c == 0);
                crowdedRow |= Arrays.stream(perRow).anyMatch(c -> c >= 4);
            }
            assertTrue(emptyRow && crowdedRow, "covered rows without slots and rows with several");
            System.out.printf("SM3 engine vs host: worst |difference| / (u (|U| + |p|)) = %.3f%n", worst);
        }
    }

    /**
     * Asserts {@code |actual - expected| <= roundings * u * (|U| + |expected|)} per element, where the step U is
     * {@code fl(before * decay) - expected}; returns the largest ratio of difference to {@code u (|U| + |expected|)}.
     */
    private static double checkWithin(int roundings, float[] before, float[] expected, float[] actual, float decay,
                                      int t) {
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            double step = Math.abs((double) (before[i] * decay) - expected[i]);
            double scale = U * (step + Math.abs(expected[i]));
            double diff = Math.abs((double) actual[i] - expected[i]);
            assertTrue(diff <= roundings * scale, "step " + t + ", element " + i + ": engine " + actual[i]
                    + ", reference " + expected[i] + ", allowed " + roundings * scale);
            if (scale > 0) {
                worst = Math.max(worst, diff / scale);
            }
        }
        return worst;
    }

    private static float[] gaussian(SplittableRandom rng, int n, double sigma) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            // Box-Muller: SplittableRandom has no nextGaussian on Java 17
            a[i] = (float) (sigma * Math.sqrt(-2 * Math.log(1 - rng.nextDouble()))
                    * Math.cos(2 * Math.PI * rng.nextDouble()));
        }
        return a;
    }

    /** {@code k} distinct integers from {@code [0, n)} in random order. */
    private static int[] distinct(SplittableRandom rng, int n, int k) {
        int[] all = new int[n];
        for (int i = 0; i < n; i++) {
            all[i] = i;
        }
        for (int i = 0; i < k; i++) {
            int j = i + rng.nextInt(n - i);
            int tmp = all[i];
            all[i] = all[j];
            all[j] = tmp;
        }
        return Arrays.copyOf(all, k);
    }

    /** {@code idx} with a random third of its slots moved to positions no slot holds. */
    private static long[] moveSome(SplittableRandom rng, long[] idx, int size) {
        long[] out = idx.clone();
        for (int s : distinct(rng, idx.length, idx.length / 3)) {
            long candidate;
            do {
                candidate = rng.nextInt(size);
            } while (contains(out, candidate));
            out[s] = candidate;
        }
        return out;
    }

    /** {@code k} slots filling one row and one column (a cross), in random order. */
    private static long[] crossOf(SplittableRandom rng, int rows, int cols, int k) {
        int row = rng.nextInt(rows);
        int col = rng.nextInt(cols);
        long[] cells = new long[rows + cols - 1];
        int n = 0;
        for (int j = 0; j < cols; j++) {
            cells[n++] = (long) row * cols + j;
        }
        for (int i = 0; i < rows; i++) {
            if (i != row) {
                cells[n++] = (long) i * cols + col;
            }
        }
        long[] out = new long[k];
        int[] order = distinct(rng, cells.length, Math.min(k, cells.length));
        for (int s = 0; s < order.length; s++) {
            out[s] = cells[order[s]];
        }
        for (int s = order.length; s < k; s++) { // the rest anywhere else
            long candidate;
            do {
                candidate = rng.nextInt(rows * cols);
            } while (contains(out, candidate) || contains(cells, candidate));
            out[s] = candidate;
        }
        return out;
    }

    private static boolean contains(long[] a, long v) {
        for (long x : a) {
            if (x == v) {
                return true;
            }
        }
        return false;
    }
}
