package dev.spiel4j.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.EngineArrays;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * An {@link Nf4Tensor} held by the engine: packed codes and absmax codes as uint8 arrays, the second-level scales
 * and offset as float32, all owned by a long-lived manager. {@link #dequantize(NDManager)} rebuilds the float32
 * tensor inside a caller's scope with two table lookups (no bit twiddling): each packed byte indexes a
 * [256, 2] table of its two codebook values, each absmax code indexes the dynamic map. The stored arrays only ever
 * appear as arguments of ops whose receiver lives in the scope, so the owner's manager gains nothing per call.
 */
public final class Nf4Array {
    private final long[] shape;
    private final int numel;
    private final int blocks;
    /** uint8 [blocks, BLOCK / 2]: the packed codes, zero-padded to whole blocks. */
    private final NDArray codes;
    /** uint8 [groups, ABSMAX_BLOCK]: one code per block, zero-padded to whole groups. */
    private final NDArray absmaxCodes;
    /** float32 [groups, 1]. */
    private final NDArray scales;
    /** float32 [1]. */
    private final NDArray offset;
    /** float32 [256, 2]: the codebook values of a packed byte's high and low nibble. */
    private final NDArray pairTable;
    /** float32 [256, 1]. */
    private final NDArray dynamicMap;

    private Nf4Array(Nf4Tensor t, NDManager owner) {
        this.shape = t.shape();
        this.numel = t.numel();
        this.blocks = Nf4Tensor.blocks(numel);
        int groups = (blocks + Nf4Tensor.ABSMAX_BLOCK - 1) / Nf4Tensor.ABSMAX_BLOCK;
        this.codes = uint8(owner, t.packedCodes(), new Shape(blocks, Nf4Tensor.BLOCK / 2));
        this.absmaxCodes = uint8(owner, t.absmaxCodes(), new Shape(groups, Nf4Tensor.ABSMAX_BLOCK));
        this.scales = EngineArrays.of(owner, t.absmaxScales(), new Shape(groups, 1));
        this.offset = EngineArrays.of(owner, new float[]{t.absmaxOffset()}, new Shape(1));
        float[] codebook = Nf4Tensor.codebook();
        float[] pairs = new float[512];
        for (int b = 0; b < 256; b++) {
            pairs[2 * b] = codebook[b >>> 4];
            pairs[2 * b + 1] = codebook[b & 0xf];
        }
        this.pairTable = EngineArrays.of(owner, pairs, new Shape(256, 2));
        this.dynamicMap = EngineArrays.of(owner, Nf4Tensor.dynamicMap(), new Shape(256, 1));
    }

    /** Uploads {@code t}; the arrays belong to {@code owner} and are freed with it. */
    public static Nf4Array upload(Nf4Tensor t, NDManager owner) {
        return new Nf4Array(t, owner);
    }

    /**
     * The float32 tensor in {@code scope}, equal to {@link Nf4Tensor#dequantize()} element for element. The lookups'
     * intermediates (int64 indices, the unscaled values: about three times the result's bytes) are freed before this
     * returns; a manager would otherwise keep them as long as the result, which in a training step is until the
     * block's backward segment.
     */
    public NDArray dequantize(NDManager scope) {
        try (NDManager work = scope.newSubManager()) {
            NDArray amax = lookup(work, absmaxCodes, dynamicMap)                // [groups, 256, 1]
                    .reshape(-1, Nf4Tensor.ABSMAX_BLOCK).mul(scales).add(offset)
                    .reshape(-1);
            if (amax.getShape().get(0) != blocks) {
                amax = amax.get(new NDIndex("0:" + blocks));
            }
            NDArray flat = lookup(work, codes, pairTable)                        // [blocks, 32, 2]
                    .reshape(blocks, Nf4Tensor.BLOCK).mul(amax.reshape(blocks, 1)).reshape(-1);
            if (flat.getShape().get(0) != numel) {
                flat = flat.get(new NDIndex("0:" + numel));
            }
            NDArray result = flat.reshape(shape);
            result.attach(scope);
            return result;
        }
    }

    public long[] shape() {
        return shape.clone();
    }

    /** Bytes held on the engine: codes, absmax codes and scales, and this array's two lookup tables. */
    public long bytes() {
        long total = 0;
        for (NDArray a : new NDArray[]{codes, absmaxCodes, scales, offset, pairTable, dynamicMap}) {
            total += a.size() * a.getDataType().getNumOfBytes();
        }
        return total;
    }

    /** table[index] for each uint8 index; the widened indices are created in {@code scope} (receiver of every op). */
    private static NDArray lookup(NDManager scope, NDArray uint8Indices, NDArray table) {
        NDArray indices = scope.zeros(new Shape(1), DataType.INT64).add(uint8Indices);
        return indices.getNDArrayInternal().embedding(indices, table, SparseFormat.DENSE).singletonOrThrow();
    }

    private static NDArray uint8(NDManager owner, byte[] data, Shape shape) {
        ByteBuffer buffer = ByteBuffer.allocateDirect(Math.toIntExact(shape.size())).order(ByteOrder.nativeOrder());
        buffer.put(data).position(0);
        return EngineArrays.of(owner, buffer, shape, DataType.UINT8);
    }
}
