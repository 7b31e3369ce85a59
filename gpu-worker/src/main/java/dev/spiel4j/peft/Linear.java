package dev.spiel4j.peft;

import ai.djl.ndarray.NDArray;

/** {@code x W^T} whose result lands in x's manager (unlike {@code weight.transpose()}, which leaks into the weight's). */
public final class Linear {
    private Linear() {
    }

    public static NDArray apply(NDArray x, NDArray weight) {
        return x.getNDArrayInternal().linear(x, weight, null).singletonOrThrow();
    }
}
