package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.EngineArrays;
import ai.djl.ndarray.index.NDIndex;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * A model's float32 weight that holds {@code W + phi} at a delta's slots, written in place, with the base values
 * of exactly those slots kept (on the engine) so that the base can be restored bit for bit.
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
    /** Holds {@link #base}. */
    private final NDManager held;
    /** The slots written (the delta's engine indices: not owned here), or null when the weight is plain W. */
    private NDArray slots;
    /** W at {@link #slots}, float32. */
    private NDArray base;

    /** Writes {@code W + values} at {@code slots} into {@code weight}. */
    MergedWeight(String module, NDArray weight, NDArray slots, NDArray values) {
        this.module = module;
        this.weight = weight;
        synchronized (IN_USE) {
            if (!IN_USE.add(weight)) {
                throw new IllegalStateException(module + ": the weight already holds another SpIEL method's deltas;"
                        + " close that method before creating another on the same model");
            }
        }
        this.held = weight.getManager().newSubManager();
        moveTo(slots, values);
    }

    /** The current slots as an engine array (the delta's; valid until the next {@link #moveTo}), or null. */
    NDArray slots() {
        return slots;
    }

    /** The array this object writes into (the model's own). */
    NDArray weight() {
        return weight;
    }

    /**
     * Makes the weight hold {@code W + values} at {@code newSlots} and plain W everywhere else: the old slots get
     * their base values back first, so an index that was dropped and regrown reads the true base value.
     */
    void moveTo(NDArray newSlots, NDArray values) {
        try (NDManager scope = held.newSubManager()) {
            NDArray flat = flatView(scope);
            if (slots != null) {
                flat.set(new NDIndex("{}", slots), base);
                base.close();
                base = null;
                slots = null;
            }
            if (newSlots == null || newSlots.size() == 0) {
                return;
            }
            slots = newSlots;
            base = flat.take(held, slots);
        }
        write(values);
    }

    /** Writes {@code W + values} at the current slots (engine to engine: nothing crosses to the host). */
    void write(NDArray values) {
        if (slots == null) {
            return;
        }
        if (values.size() != slots.size()) {
            throw new IllegalArgumentException(module + ": " + slots.size() + " slots but " + values.size() + " values");
        }
        try (NDManager scope = held.newSubManager()) {
            flatView(scope).set(new NDIndex("{}", slots), EngineArrays.borrow(base, scope).add(values));
        }
    }

    /** Puts the base values back: the weight is W again. */
    void restore() {
        moveTo(null, null);
        held.close();
        synchronized (IN_USE) {
            IN_USE.remove(weight);
        }
    }

    /** A {@code [rows * cols]} view of the weight, attached to {@code scope} (not to the model's manager). */
    private NDArray flatView(NDManager scope) {
        return EngineArrays.borrow(weight, scope).reshape(-1);
    }
}
