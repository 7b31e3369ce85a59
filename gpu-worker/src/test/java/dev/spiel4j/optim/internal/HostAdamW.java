package dev.spiel4j.optim.internal;

import java.util.Arrays;

/**
 * The reference for the engine's {@link AdamW}: the same optimizer on Java arrays, with double intermediates (it was
 * the production optimizer until the state moved to the engine). AdamW over a flat vector of parameters (host side),
 * with a per-element age so that elements "born" at different times (SpIEL's regrown slots) each get their own bias
 * correction {@code 1 - beta^age}, and with moments that can be seeded for a newly grown element.
 *
 * <p>Update for element i with gradient g (already scaled for clipping): {@code age += 1;
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * wd * p; p -= lr * (m / (1-b1^age)) / (sqrt(v / (1-b2^age)) + eps)}.
 * Weight decay is decoupled (applied to the parameter, not the gradient), as in PyTorch's AdamW.
 *
 * <p>Seeded elements start as if they had taken the selection phase's steps, as {@link AdamW#seed} describes.
 */
public final class HostAdamW {
    private final float beta1;
    private final float beta2;
    private final float eps;
    private final float weightDecay;
    private final float[] m;
    private final float[] v;
    private final int[] age;

    public HostAdamW(int size, float beta1, float beta2, float eps, float weightDecay) {
        if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && eps > 0 && weightDecay >= 0)) {
            throw new IllegalArgumentException("AdamW needs 0 <= beta < 1, eps > 0, weight decay >= 0; got beta1=" + beta1
                    + " beta2=" + beta2 + " eps=" + eps + " weightDecay=" + weightDecay);
        }
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.m = new float[size];
        this.v = new float[size];
        this.age = new int[size];
    }

    public int size() {
        return m.length;
    }

    /**
     * One update of every element.
     *
     * @param params    updated in place
     * @param grads     raw gradients (same length)
     * @param lr        learning rate
     * @param gradScale factor applied to every gradient first (global-norm clipping)
     */
    public void step(float[] params, float[] grads, float lr, float gradScale) {
        if (params.length != m.length || grads.length != m.length) {
            throw new IllegalArgumentException("AdamW of size " + m.length + " got " + params.length + " params and "
                    + grads.length + " gradients");
        }
        float decay = 1f - lr * weightDecay;
        // neighbouring elements almost always share an age: the bias corrections are recomputed only when it changes
        int correctedAge = -1;
        double correction1 = 1;
        double correction2 = 1;
        for (int i = 0; i < params.length; i++) {
            float g = grads[i] * gradScale;
            int a = ++age[i];
            if (a != correctedAge) {
                correctedAge = a;
                correction1 = 1 - Math.pow(beta1, a);
                correction2 = 1 - Math.pow(beta2, a);
            }
            m[i] = beta1 * m[i] + (1 - beta1) * g;
            v[i] = beta2 * v[i] + (1 - beta2) * g * g;
            double mHat = m[i] / correction1;
            double vHat = v[i] / correction2;
            params[i] = (float) (params[i] * decay - lr * mHat / (Math.sqrt(vHat) + eps));
        }
    }

    /** As {@link AdamW#seed}: moments of {@code samples} steps of the means, the next update counting as the last. */
    public void seed(int i, float firstMoment, float secondMoment, int samples) {
        m[i] = samples > 0 ? firstMoment * (float) (1 - Math.pow(beta1, samples)) : firstMoment;
        v[i] = samples > 0 ? secondMoment * (float) (1 - Math.pow(beta2, samples)) : secondMoment;
        age[i] = Math.max(0, samples - 1);
    }

    public float[] firstMoments() {
        return m.clone();
    }

    public float[] secondMoments() {
        return v.clone();
    }

    public int[] ages() {
        return age.clone();
    }

    /** Replace the whole state (resuming); arrays must match {@link #size()}. */
    public void restore(float[] firstMoments, float[] secondMoments, int[] ages) {
        if (firstMoments.length != m.length || secondMoments.length != m.length || ages.length != m.length) {
            throw new IllegalArgumentException("AdamW state of size " + m.length + " cannot take arrays of "
                    + firstMoments.length + "/" + secondMoments.length + "/" + ages.length);
        }
        System.arraycopy(firstMoments, 0, m, 0, m.length);
        System.arraycopy(secondMoments, 0, v, 0, v.length);
        System.arraycopy(ages, 0, age, 0, age.length);
    }

    /** Bytes of optimizer state: two float moments and an int age per element. */
    public long stateBytes() {
        return 12L * m.length;
    }

    @Override
    public String toString() {
        return "HostAdamW[size=" + m.length + ", ages=" + Arrays.stream(age).summaryStatistics() + "]";
    }
}
