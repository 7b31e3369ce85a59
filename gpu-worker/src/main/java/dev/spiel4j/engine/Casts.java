package dev.spiel4j.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;

/**
 * Data type conversion that autograd can see through. DJL's {@code toType} converts under PyTorch's
 * {@code NoGradGuard}, so its result has no gradient history: in a float16 forward pass every cast between float16
 * and float32 would cut the graph, and the loss would not depend on any trainable parameter. Writing the array into a
 * fresh array of the target type ({@code index_put_}, which autograd records, with the gradient converted back to
 * the source's type) keeps the path.
 */
public final class Casts {
    private static final NDIndex ALL = new NDIndex("...");

    private Casts() {
    }

    /** {@code x} as {@code type}, differentiable; {@code x} itself when it already has that type. */
    public static NDArray to(NDArray x, DataType type) {
        return to(x, type, x.getManager());
    }

    /** As {@link #to(NDArray, DataType)}, a converted array attached to {@code manager}. */
    public static NDArray to(NDArray x, DataType type, NDManager manager) {
        if (x.getDataType() == type) {
            return x;
        }
        NDArray out = manager.zeros(x.getShape(), type);
        out.set(ALL, x);
        return out;
    }
}
