package dev.spiel4j.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.model.ModuleNames;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Nf4TensorTest {
    /** QLoRA's create_normal_map offset: the largest quantile used, (1 - 1/(2*15) + 1 - 1/(2*16)) / 2. */
    private static final double NORMAL_MAP_OFFSET = 0.9677083;

    @Test
    void codebookIsQloraNormalMapDerivedFromNormalQuantiles() {
        // Independent derivation: 8 positive quantiles of N(0,1) at linspace(offset, 0.5, 9)[:-1], 7 negative ones at
        // linspace(offset, 0.5, 8)[:-1], and 0, normalised by the largest.
        double[] expected = new double[16];
        int n = 0;
        for (int i = 0; i < 8; i++) {
            expected[n++] = normalQuantile(NORMAL_MAP_OFFSET + (0.5 - NORMAL_MAP_OFFSET) * i / 8);
        }
        for (int i = 0; i < 7; i++) {
            expected[n++] = -normalQuantile(NORMAL_MAP_OFFSET + (0.5 - NORMAL_MAP_OFFSET) * i / 7);
        }
        expected[n] = 0;
        Arrays.sort(expected);
        double max = expected[15];
        float[] codebook = Nf4Tensor.codebook();
        assertEquals(16, codebook.length);
        for (int i = 0; i < 16; i++) {
            assertEquals(expected[i] / max, codebook[i], 2e-6, "code " + i);
        }
        assertEquals(-1f, codebook[0]);
        assertEquals(0f, codebook[7]);
        assertEquals(1f, codebook[15]);
    }

    @Test
    void dynamicMapIsSignedAscendingWithZeroAndOne() {
        float[] map = Nf4Tensor.dynamicMap();
        assertEquals(256, map.length);
        for (int i = 1; i < map.length; i++) {
            assertTrue(map[i] > map[i - 1], "strictly ascending at " + i);
        }
        assertEquals(1f, map[255]);
        assertEquals(-(1 - 0.9 / 128), map[0], 1e-6);     // the largest negative mean of the top decade
        assertTrue(Arrays.binarySearch(map, 0f) >= 0);
        assertEquals(1e-6 * 0.55, map[128], 1e-12);        // smallest positive: decade 1e-6, one mean of [0.1, 1]
    }

    @Test
    void packingRoundTripsExactCodes() {
        Random random = new Random(7);
        int numel = 3 * Nf4Tensor.BLOCK + 5;                 // odd length: the last byte holds a single code
        float[] codebook = Nf4Tensor.codebook();
        int[] codes = new int[numel];
        float[] values = new float[numel];
        for (int i = 0; i < numel; i++) {
            codes[i] = random.nextInt(16);
            float scale = 0.5f + i / Nf4Tensor.BLOCK;
            values[i] = codebook[codes[i]] * scale;
        }
        for (int b = 0; b * Nf4Tensor.BLOCK < numel; b++) {  // every block holds +-its scale, so absmax = scale
            codes[b * Nf4Tensor.BLOCK] = 15;
            values[b * Nf4Tensor.BLOCK] = 0.5f + b;
        }
        Nf4Tensor t = Nf4Tensor.quantize("exact", values, new long[]{numel});
        for (int i = 0; i < numel; i++) {
            assertEquals(codes[i], t.code(i), "code " + i);
        }
        byte[] packed = t.packedCodes();
        assertEquals((numel + 1) / 2, packed.length);
        assertEquals((byte) (codes[0] << 4 | codes[1]), packed[0], "first element in the high nibble");
        assertEquals((byte) (codes[numel - 1] << 4), packed[packed.length - 1]);
    }

    @Test
    void randomTensorErrorIsBoundedPerBlock() {
        Random random = new Random(11);
        int numel = 300 * Nf4Tensor.BLOCK + 17;              // two absmax groups, a partial block
        float[] values = new float[numel];
        for (int i = 0; i < numel; i++) {
            values[i] = (float) (random.nextGaussian() * (i % 997 == 0 ? 8 : 1) * (1 + i / 5000));
        }
        checkErrorBound("random", values);
    }

    @Test
    void stories260kBlockLinearsErrorIsBoundedPerBlock() {
        LoadedModel loaded = GgufReader.load(SharedAssets.file("model/stories260K.gguf"));
        for (String module : ModuleNames.allLinears(loaded.config().layers())) {
            HostTensor w = loaded.tensors().get(module + ".weight");
            checkErrorBound(module, w.toFloats());
        }
    }

    @Test
    void engineDequantizationEqualsHostAndLeavesNothingBehind() {
        Random random = new Random(3);
        float[] values = new float[70 * 300 + 9];           // 329 blocks, two groups, a partial block
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        Nf4Tensor t = Nf4Tensor.quantize("engine", values, new long[]{values.length});
        float[] host = t.dequantize();
        try (NDManager owner = NDManager.newBaseManager()) {
            Nf4Array array = Nf4Array.upload(t, owner);
            int stored = owner.getManagedArrays().size();
            for (int round = 0; round < 3; round++) {
                try (NDManager scope = owner.newSubManager()) {
                    NDArray w = array.dequantize(scope);
                    assertEquals(scope, w.getManager());
                    assertArrayEquals(host, w.toFloatArray(), 0f);
                }
                assertEquals(stored, owner.getManagedArrays().size(), "dequantization leaks into the owner");
            }
        }
        Nf4Tensor matrix = Nf4Tensor.quantize("matrix", Arrays.copyOf(values, 64 * 48), new long[]{64, 48});
        try (NDManager owner = NDManager.newBaseManager(); NDManager scope = owner.newSubManager()) {
            NDArray w = Nf4Array.upload(matrix, owner).dequantize(scope);
            assertArrayEquals(new long[]{64, 48}, w.getShape().getShape());
            assertArrayEquals(matrix.dequantize(), w.toFloatArray(), 0f);
        }
    }

    @Test
    void rejectsBadInputNamingTheTensor() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Nf4Tensor.quantize("w.q", new float[]{1, Float.NaN}, new long[]{2}));
        assertTrue(e.getMessage().contains("w.q") && e.getMessage().contains("index 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Nf4Tensor.quantize("w.k", new float[6], new long[]{2, 2}));
        assertTrue(e.getMessage().contains("w.k"), e.getMessage());
    }

    /**
     * Per block: every code is the nearest codebook value to v / absmax (absmax exact), and
     * |v - deq| <= absmax * maxGap / 2 + |absmax - absmax'|, where absmax' is the double-dequantized constant and
     * |absmax - absmax'| <= (its group's largest |absmax - mean|) * (the dynamic map's largest gap) / 2.
     */
    private static void checkErrorBound(String name, float[] values) {
        Nf4Tensor t = Nf4Tensor.quantize(name, values, new long[]{values.length});
        float[] codebook = Nf4Tensor.codebook();
        double halfGap = maxGap(codebook) / 2;
        double dynamicHalfGap = maxGap(Nf4Tensor.dynamicMap()) / 2;
        int blocks = (values.length + Nf4Tensor.BLOCK - 1) / Nf4Tensor.BLOCK;
        double[] absmax = new double[blocks];
        double mean = 0;
        for (int b = 0; b < blocks; b++) {
            for (int i = b * Nf4Tensor.BLOCK; i < Math.min(values.length, (b + 1) * Nf4Tensor.BLOCK); i++) {
                absmax[b] = Math.max(absmax[b], Math.abs(values[i]));
            }
            mean += absmax[b] / blocks;
        }
        float[] approx = t.dequantizedAbsmax();
        float[] deq = t.dequantize();
        double worst = 0;
        for (int b = 0; b < blocks; b++) {
            int group = b / Nf4Tensor.ABSMAX_BLOCK;
            double deviation = 0;
            for (int g = group * Nf4Tensor.ABSMAX_BLOCK; g < Math.min(blocks, (group + 1) * Nf4Tensor.ABSMAX_BLOCK); g++) {
                deviation = Math.max(deviation, Math.abs(absmax[g] - mean));
            }
            double absmaxError = Math.abs(absmax[b] - approx[b]);
            assertTrue(absmaxError <= deviation * dynamicHalfGap + 1e-6 * absmax[b] + 1e-12,
                    name + " block " + b + ": absmax error " + absmaxError);
            for (int i = b * Nf4Tensor.BLOCK; i < Math.min(values.length, (b + 1) * Nf4Tensor.BLOCK); i++) {
                double x = values[i] / absmax[b];
                double chosen = Math.abs(x - codebook[t.code(i)]);
                for (float c : codebook) {
                    assertTrue(chosen <= Math.abs(x - c) + 1e-6, name + "[" + i + "] is not coded to the nearest value");
                }
                double err = Math.abs(values[i] - deq[i]);
                assertTrue(err <= absmax[b] * halfGap + absmaxError + 1e-6 * absmax[b],
                        name + "[" + i + "]: error " + err + " exceeds the bound for absmax " + absmax[b]);
                worst = Math.max(worst, err / absmax[b]);
            }
        }
        assertTrue(worst > 0.05, name + ": the bound is not vacuous (worst relative error " + worst + ")");
    }

    private static double maxGap(float[] sorted) {
        double gap = 0;
        for (int i = 1; i < sorted.length; i++) {
            gap = Math.max(gap, sorted[i] - sorted[i - 1]);
        }
        return gap;
    }

    /** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
    private static double normalQuantile(double p) {
        double[] a = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                -3.066479806614716e+01, 2.506628277459239e+00};
        double[] b = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                -1.328068155288572e+01};
        double[] c = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549671010115164e+00,
                4.374664141464968e+00, 2.938163982698783e+00};
        double[] d = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00};
        double low = 0.02425;
        if (p < low) {
            double q = Math.sqrt(-2 * Math.log(p));
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                    / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        }
        if (p > 1 - low) {
            return -normalQuantile(1 - p);
        }
        double q = p - 0.5;
        double r = q * q;
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
}
