package dev.spiel4j.quant;

import java.util.Arrays;
import java.util.Objects;

/**
 * A float tensor quantized to 4-bit NormalFloat (NF4) on the host, as in QLoRA: blocks of {@link #BLOCK} values are
 * scaled by their absolute maximum and each value becomes the index of the nearest of the 16 {@link #codebook()}
 * values; two indices are packed per byte (the first of a pair in the high nibble, as bitsandbytes does). The
 * absmax constants are quantized again ("double quantization"): their mean is subtracted and the remainders are
 * quantized blockwise ({@link #ABSMAX_BLOCK} per block) to 8 bits with bitsandbytes' signed dynamic map, each
 * block scaled by its own absmax. Storage: 4 bits per value plus about 8/64 + 32/(64*256) bits of constants.
 *
 * <p>Immutable; {@link #dequantize()} gives the values the engine path ({@link Nf4Array}) computes bit for bit.
 */
public final class Nf4Tensor {
    /** Values per first-level block. */
    public static final int BLOCK = 64;
    /** First-level absmax constants per second-level block. */
    public static final int ABSMAX_BLOCK = 256;

    /** QLoRA's NF4 codebook (bitsandbytes' NF4 constants), ascending, exactly -1, 0 and 1 included. */
    private static final float[] CODEBOOK = {
            -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
            0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
            0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
    /** Decision boundaries: midpoints between neighbouring codebook values. */
    private static final float[] CODE_MIDPOINTS = midpoints(CODEBOOK);
    private static final float[] DYNAMIC_MAP = buildDynamicMap();
    private static final float[] DYNAMIC_MIDPOINTS = midpoints(DYNAMIC_MAP);

    private final long[] shape;
    private final int numel;
    private final byte[] codes;
    private final byte[] absmaxCodes;
    private final float[] absmaxScales;
    private final float absmaxOffset;

    private Nf4Tensor(long[] shape, int numel, byte[] codes, byte[] absmaxCodes, float[] absmaxScales,
                      float absmaxOffset) {
        this.shape = shape;
        this.numel = numel;
        this.codes = codes;
        this.absmaxCodes = absmaxCodes;
        this.absmaxScales = absmaxScales;
        this.absmaxOffset = absmaxOffset;
    }

    /**
     * Quantizes {@code values} (row-major, {@code shape}'s element count).
     *
     * @param name names the tensor in error messages
     */
    public static Nf4Tensor quantize(String name, float[] values, long[] shape) {
        long count = 1;
        for (long d : shape) {
            if (d <= 0) {
                throw new IllegalArgumentException(name + ": shape " + Arrays.toString(shape) + " has a dimension <= 0");
            }
            count *= d;
        }
        if (count != values.length) {
            throw new IllegalArgumentException(name + ": " + values.length + " values do not fill shape "
                    + Arrays.toString(shape));
        }
        int blocks = blocks(values.length);
        float[] absmax = new float[blocks];
        for (int i = 0; i < values.length; i++) {
            float v = values[i];
            if (!Float.isFinite(v)) {
                throw new IllegalArgumentException(name + ": value " + v + " at flat index " + i + " is not finite");
            }
            absmax[i / BLOCK] = Math.max(absmax[i / BLOCK], Math.abs(v));
        }
        // First level against the exact absmax (as bitsandbytes does); an all-zero block codes every value as 0.
        byte[] codes = new byte[(values.length + 1) / 2];
        for (int i = 0; i < values.length; i++) {
            float a = absmax[i / BLOCK];
            int code = nearest(CODE_MIDPOINTS, a == 0 ? 0f : values[i] / a);
            codes[i / 2] |= (byte) ((i % 2 == 0) ? code << 4 : code);
        }
        // Second level: absmax - mean, blockwise absmax-scaled onto the dynamic map.
        double sum = 0;
        for (float a : absmax) {
            sum += a;
        }
        float offset = (float) (sum / blocks);
        int groups = (blocks + ABSMAX_BLOCK - 1) / ABSMAX_BLOCK;
        float[] scales = new float[groups];
        for (int b = 0; b < blocks; b++) {
            scales[b / ABSMAX_BLOCK] = Math.max(scales[b / ABSMAX_BLOCK], Math.abs(absmax[b] - offset));
        }
        byte[] absmaxCodes = new byte[blocks];
        for (int b = 0; b < blocks; b++) {
            float s = scales[b / ABSMAX_BLOCK];
            absmaxCodes[b] = (byte) nearest(DYNAMIC_MIDPOINTS, s == 0 ? 0f : (absmax[b] - offset) / s);
        }
        return new Nf4Tensor(shape.clone(), values.length, codes, absmaxCodes, scales, offset);
    }

    /** The dequantized values, row-major: {@code codebook[code] * absmax'} with the double-dequantized absmax. */
    public float[] dequantize() {
        float[] absmax = dequantizedAbsmax();
        float[] out = new float[numel];
        for (int i = 0; i < numel; i++) {
            out[i] = CODEBOOK[code(i)] * absmax[i / BLOCK];
        }
        return out;
    }

    /** The first-level absmax constants after double dequantization: {@code map[c] * scale + offset} per block. */
    public float[] dequantizedAbsmax() {
        float[] absmax = new float[absmaxCodes.length];
        for (int b = 0; b < absmax.length; b++) {
            absmax[b] = DYNAMIC_MAP[absmaxCodes[b] & 0xff] * absmaxScales[b / ABSMAX_BLOCK] + absmaxOffset;
        }
        return absmax;
    }

    /** The 4-bit code of element {@code i}. */
    public int code(int i) {
        Objects.checkIndex(i, numel);
        int packed = codes[i / 2] & 0xff;
        return i % 2 == 0 ? packed >>> 4 : packed & 0xf;
    }

    public long[] shape() {
        return shape.clone();
    }

    public int numel() {
        return numel;
    }

    /** Bytes this representation takes: packed codes, one byte per block, the float scales and the offset. */
    public long bytes() {
        return storageBytes(numel);
    }

    /** Bytes an NF4 tensor of {@code numel} values takes, see {@link #bytes()}. */
    public static long storageBytes(long numel) {
        long blocks = (numel + BLOCK - 1) / BLOCK;
        long groups = (blocks + ABSMAX_BLOCK - 1) / ABSMAX_BLOCK;
        return (numel + 1) / 2 + blocks + 4 * groups + 4;
    }

    /** The 16 NF4 values, ascending. */
    public static float[] codebook() {
        return CODEBOOK.clone();
    }

    /**
     * bitsandbytes' signed 8-bit dynamic map (256 values, ascending) used for the absmax constants, rebuilt here in
     * float32 (so equal to bitsandbytes' table up to the rounding of its linspace).
     */
    public static float[] dynamicMap() {
        return DYNAMIC_MAP.clone();
    }

    static int blocks(int numel) {
        return (numel + BLOCK - 1) / BLOCK;
    }

    byte[] packedCodes() {
        return codes;
    }

    byte[] absmaxCodes() {
        return absmaxCodes;
    }

    float[] absmaxScales() {
        return absmaxScales;
    }

    float absmaxOffset() {
        return absmaxOffset;
    }

    /**
     * bitsandbytes' {@code create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)}: for each decade
     * 10^-6 .. 10^0, 2^i evenly spaced means in [0.1, 1] times the decade, with both signs, plus 0 and 1.
     */
    private static float[] buildDynamicMap() {
        float[] map = new float[256];
        int n = 0;
        for (int i = 0; i < 7; i++) {
            int boundaries = (1 << i) + 1;
            float decade = (float) Math.pow(10, -6 + i);
            for (int j = 0; j + 1 < boundaries; j++) {
                float lo = 0.1f + 0.9f * j / (boundaries - 1);
                float hi = 0.1f + 0.9f * (j + 1) / (boundaries - 1);
                float mean = decade * ((lo + hi) / 2f);
                map[n++] = mean;
                map[n++] = -mean;
            }
        }
        map[n++] = 0f;
        map[n++] = 1f;
        if (n != map.length) {
            throw new AssertionError("dynamic map has " + n + " values");
        }
        Arrays.sort(map);
        return map;
    }

    private static float[] midpoints(float[] sorted) {
        float[] mid = new float[sorted.length - 1];
        for (int i = 0; i < mid.length; i++) {
            mid[i] = (sorted[i] + sorted[i + 1]) / 2f;
        }
        return mid;
    }

    /** Index of the nearest value given the sorted midpoints between values (ties go to the upper value). */
    private static int nearest(float[] midpoints, float x) {
        int lo = 0;
        int hi = midpoints.length;
        while (lo < hi) {
            int m = (lo + hi) >>> 1;
            if (x >= midpoints[m]) {
                lo = m + 1;
            } else {
                hi = m;
            }
        }
        return lo;
    }
}
