package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.EngineArrays;
import ai.djl.ndarray.index.NDIndex;

import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * A model's float32 weight that holds {@code W + phi} at a delta's slots, written in place, with the base values
 * of exactly those slots kept on the host so that the base can be restored bit for bit.
 *
 * <p>Why in place: a forward pass through a separate {@code W' = W + scatter(phi)} makes autograd keep that dense
 * copy of every targeted matrix until the backward pass (4 bytes per targeted weight, the whole model's size again),
 * while the base weight itself is kept by reference at no cost. The values written are {@code fl(W[i] + phi)} for
 * each slot, the same float32 sums the scatter form computes, so the forward pass is unchanged to the last bit.
 *
 * <p>The base is intact again after {@link #restore()}; until then the array is the model's weight only through the
 * method owning this object, and a second one on the same array is refused.
 */
final class MergedWeight {
    /**
     * The weights some live MergedWeight writes into. A second method on the same model would read another method's
     * deltas as base values, so it is refused until the first one is closed.
     */
    private static final Set<NDArray> IN_USE = Collections.newSetFromMap(new IdentityHashMap<>());

    private final String module;
    private final NDArray weight;
    /** Holds {@link #slots}, the indices on the engine, uploaded once per change of the indices, not per step. */
    private final NDManager held;
    private long[] indices = new long[0];
    private NDArray slots;
    private float[] base = new float[0];
    /** Reused for the values written each step (no per-step garbage of k floats). */
    private float[] merged = new float[0];

    /** Writes {@code W + values} at {@code indices} into {@code weight}. */
    MergedWeight(String module, NDArray weight, long[] indices, float[] values) {
        this.module = module;
        this.weight = weight;
        synchronized (IN_USE) {
            if (!IN_USE.add(weight)) {
                throw new IllegalStateException(module + ": the weight already holds another SpIEL method's deltas;"
                        + " close that method before creating another on the same model");
            }
        }
        this.held = weight.getManager().newSubManager();
        write(indices, values);
    }

    /** The current indices as an engine array (valid until the next {@link #write} that changes them), or null. */
    NDArray slots() {
        return slots;
    }

    /** The array this object writes into (the model's own). */
    NDArray weight() {
        return weight;
    }

    /**
     * Makes the weight hold {@code W + values} at {@code newIndices} and plain W everywhere else. Slots whose index
     * changed get their base value back first, so an index that was dropped and regrown reads the true base value.
     */
    void write(long[] newIndices, float[] values) {
        if (newIndices.length != values.length) {
            throw new IllegalArgumentException(module + ": " + newIndices.length + " indices but " + values.length
                    + " values");
        }
        try (NDManager scope = weight.getManager().newSubManager()) {
            NDArray flat = flatView(scope);
            if (!Arrays.equals(indices, newIndices)) {
                if (slots != null) {
                    flat.set(new NDIndex("{}", slots), EngineArrays.of(scope, base));
                    slots.close();
                    slots = null;
                }
                indices = newIndices.clone();
                if (indices.length > 0) {
                    slots = EngineArrays.of(held, indices);
                }
                base = indices.length == 0 ? new float[0] : flat.take(slots).toFloatArray();
            }
            if (indices.length == 0) {
                return;
            }
            if (merged.length != indices.length) {
                merged = new float[indices.length];
            }
            for (int i = 0; i < merged.length; i++) {
                merged[i] = base[i] + values[i];
            }
            flat.set(new NDIndex("{}", slots), EngineArrays.of(scope, merged));
        }
    }

    /** Puts the base values back: the weight is W again. */
    void restore() {
        write(new long[0], new float[0]);
        held.close();
        synchronized (IN_USE) {
            IN_USE.remove(weight);
        }
    }

    /** A {@code [rows * cols]} view of the weight, attached to {@code scope} (not to the model's manager). */
    private NDArray flatView(NDManager scope) {
        NDArray flat = weight.reshape(-1);
        flat.attach(scope);
        return flat;
    }
}
