package dev.spiel4j.optim.internal;

import java.util.Arrays;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.optim.OptimizerSettings;

/**
 * AdamW on engine arrays, for a parameter array of a fixed shape, with a per-element age so that elements "born" at
 * different times (SpIEL's regrown slots) each get their own bias correction {@code 1 - beta^age}, and with moments
 * that can be seeded for a newly grown element. The moments {@code m}, {@code v} (float32) and the ages (int32) live
 * in a sub-manager of the manager given at construction until {@link #close()}; a step computes on the engine in a
 * scope of its own that closes when it returns, so nothing but the step's scalars crosses from the host.
 *
 * <p>Update for element i with gradient g (already scaled for clipping): {@code age += 1;
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p = p (1 - lr wd) - lr (m / (1-b1^age)) / (sqrt(v / (1-b2^age)) + eps)}.
 * Weight decay is decoupled (applied to the parameter, not the gradient), as in PyTorch's AdamW.
 *
 * <p>Precision: m and v are float32 sums and products in the order above, the same roundings as the host reference
 * (bit for bit). The bias corrections come from a table indexed by age, {@code 1 - b^a} computed in double on the
 * host and rounded once to float32 (in float32, {@code 1 - b2^age} for b2 = 0.999 and a small age would lose about
 * four digits to cancellation; a per-element float64 power on the engine cost as much as the rest of the update).
 * The table covers every age the elements can have and is uploaded again, twice as long, only when the ages outgrow
 * it (a few times per run). The rest of the update runs in float32, a few roundings of 2^-24 each (see
 * {@code OptimizerTest} for the bound).
 *
 * <p>A grown element seeded from the means of a selection phase's {@code samples} gradients starts as if it had
 * taken those steps ({@link #seed}): moments {@code E[g] (1-b1^samples)} and {@code E[g^2] (1-b2^samples)}, its next
 * update corrected with {@code 1 - b^samples}, as the paper's implementation does. Seeding with age 0 instead would
 * divide the seeds by {@code 1-b1} and {@code 1-b2} at the next update, shrinking a grown element's first steps to
 * about {@code sqrt(1-b2)/(1-b1)} of a trained one's: from the paper's own adapter and batches that cost up to 0.19
 * nats of training loss within 15 steps of one reselection ({@code ForkTrajectoryTest}).
 */
public final class AdamW implements AutoCloseable {
    private final float beta1;
    private final float beta2;
    private final float eps;
    private final float weightDecay;
    private final Shape shape;
    private final NDManager state;
    private final NDArray m;
    private final NDArray v;
    private final NDArray age;
    /** No element's age exceeds this (host bookkeeping: +1 per step, the maximum of restored ages). */
    private int maxAge;
    /** {@code 1 - beta1^a} and {@code 1 - beta2^a} for ages {@code a < tableLength}, float32, or null. */
    private NDArray corrections1;
    private NDArray corrections2;

    /**
     * @param manager the state's sub-manager is opened here (a long-lived one: the model's, a method's)
     * @param shape   the shape of the parameter array the optimizer updates
     */
    public AdamW(NDManager manager, Shape shape, OptimizerSettings settings) {
        this.beta1 = settings.beta1();
        this.beta2 = settings.beta2();
        this.eps = settings.eps();
        this.weightDecay = settings.weightDecay();
        this.shape = shape;
        this.state = manager.newSubManager();
        this.m = state.zeros(shape, DataType.FLOAT32);
        this.v = state.zeros(shape, DataType.FLOAT32);
        this.age = state.zeros(shape, DataType.INT32);
        coverAge(0); // the tables exist from the start: later growth replaces them, the number of arrays stays
    }

    /** Number of elements. */
    public long size() {
        return shape.size();
    }

    /**
     * One update of every element.
     *
     * @param params    float32 of this optimizer's shape, updated in place (every handle on it sees the new values)
     * @param grads     raw gradients, same shape
     * @param lr        learning rate
     * @param gradScale factor applied to every gradient first (global-norm clipping)
     */
    public void step(NDArray params, NDArray grads, float lr, float gradScale) {
        if (!params.getShape().equals(shape) || !grads.getShape().equals(shape)
                || params.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException("AdamW of shape " + shape + " got " + params.getDataType() + " params "
                    + params.getShape() + " and gradients " + grads.getShape());
        }
        try (NDManager scope = state.newSubManager()) {
            NDArray p = EngineArrays.borrow(params, scope);
            NDArray mS = EngineArrays.borrow(m, scope);
            NDArray vS = EngineArrays.borrow(v, scope);
            NDArray ageS = EngineArrays.borrow(age, scope);
            NDArray g = EngineArrays.borrow(grads, scope).mul(EngineArrays.scalar(scope, gradScale));
            ageS.addi(EngineArrays.scalar(scope, 1).toType(DataType.INT32, false));
            coverAge(Math.addExact(maxAge, 1));
            maxAge++;
            mS.muli(EngineArrays.scalar(scope, beta1)).addi(g.mul(EngineArrays.scalar(scope, 1 - beta1)));
            vS.muli(EngineArrays.scalar(scope, beta2)).addi(g.mul(EngineArrays.scalar(scope, 1 - beta2)).mul(g));
            NDArray denominator = vS.div(corrections2.take(scope, ageS)).sqrt().add(EngineArrays.scalar(scope, eps));
            NDArray update = mS.div(corrections1.take(scope, ageS)).mul(EngineArrays.scalar(scope, lr))
                    .div(denominator);
            p.muli(EngineArrays.scalar(scope, 1f - lr * weightDecay)).subi(update);
        }
    }

    /** Makes the bias-correction tables cover ages up to {@code age} (see the class comment). */
    private void coverAge(int age) {
        if (corrections1 != null && corrections1.size() > age) {
            return;
        }
        int length = Math.max(64, 2 * age);
        NDArray next1 = EngineArrays.of(state, biasCorrections(beta1, length));
        NDArray next2 = EngineArrays.of(state, biasCorrections(beta2, length));
        if (corrections1 != null) {
            corrections1.close();
            corrections2.close();
        }
        corrections1 = next1;
        corrections2 = next2;
    }

    /** {@code 1 - beta^a} for {@code a = 0 .. length-1}, in double rounded to float32. */
    private static float[] biasCorrections(float beta, int length) {
        float[] c = new float[length];
        for (int a = 0; a < length; a++) {
            c[a] = (float) (1 - Math.pow(beta, a));
        }
        return c;
    }

    /**
     * Restarts the listed elements (flat indices, distinct) as newly grown, their moments seeded from the means of
     * {@code samples} gradients, as the paper's implementation seeds them: the moments are those an element would
     * hold after {@code samples} steps of those gradients ({@code m = E[g] (1 - b1^samples)}, likewise v) and its age
     * is {@code samples}, so its next update's bias correction recovers the means and it moves at full size at once.
     * With 0 samples the element restarts fresh (moments as given, age 0). Called at a reselection, the one time host
     * data may come in.
     */
    public void seed(int[] elements, float[] firstMoments, float[] secondMoments, int samples) {
        if (firstMoments.length != elements.length || secondMoments.length != elements.length) {
            throw new IllegalArgumentException(elements.length + " elements to seed with " + firstMoments.length
                    + " first and " + secondMoments.length + " second moments");
        }
        if (elements.length == 0) {
            return;
        }
        try (NDManager scope = state.newSubManager()) {
            long[] flat = new long[elements.length];
            for (int i = 0; i < flat.length; i++) {
                flat[i] = elements[i];
            }
            NDIndex at = new NDIndex("{}", EngineArrays.of(scope, flat));
            // the step increments an age before using it: samples - 1 here makes the next update use `samples`
            int startAge = Math.max(0, samples - 1);
            float c1 = samples > 0 ? (float) (1 - Math.pow(beta1, samples)) : 1f;
            float c2 = samples > 0 ? (float) (1 - Math.pow(beta2, samples)) : 1f;
            float[] m0 = firstMoments.clone();
            float[] v0 = secondMoments.clone();
            for (int i = 0; i < m0.length; i++) {
                m0[i] *= c1;
                v0[i] *= c2;
            }
            int[] ages = new int[elements.length];
            Arrays.fill(ages, startAge);
            EngineArrays.borrow(m, scope).reshape(-1).set(at, EngineArrays.of(scope, m0));
            EngineArrays.borrow(v, scope).reshape(-1).set(at, EngineArrays.of(scope, v0));
            EngineArrays.borrow(age, scope).reshape(-1).set(at, EngineArrays.of(scope, ages));
            maxAge = Math.max(maxAge, startAge);
            coverAge(maxAge + 1);
        }
    }

    /** The first moments, row-major (a host copy, for checkpoints). */
    public float[] firstMoments() {
        return m.toFloatArray();
    }

    public float[] secondMoments() {
        return v.toFloatArray();
    }

    public int[] ages() {
        return age.toIntArray();
    }

    /** Replaces the whole state (resuming); arrays must match {@link #size()}. */
    public void restore(float[] firstMoments, float[] secondMoments, int[] ages) {
        if (firstMoments.length != size() || secondMoments.length != size() || ages.length != size()) {
            throw new IllegalArgumentException("AdamW state of size " + size() + " cannot take arrays of "
                    + firstMoments.length + "/" + secondMoments.length + "/" + ages.length);
        }
        EngineArrays.copyInto(m, firstMoments);
        EngineArrays.copyInto(v, secondMoments);
        EngineArrays.copyInto(age, ages);
        maxAge = 0;
        for (int a : ages) {
            if (a < 0) {
                throw new IllegalArgumentException("AdamW state holds a negative age: " + a);
            }
            maxAge = Math.max(maxAge, a);
        }
    }

    /** Bytes of optimizer state: two float32 moments and an int32 age per element, and the correction tables. */
    public long stateBytes() {
        return 12L * size() + (corrections1 == null ? 0 : 4L * (corrections1.size() + corrections2.size()));
    }

    @Override
    public void close() {
        state.close();
    }

    @Override
    public String toString() {
        return "AdamW[shape=" + shape + "]";
    }
}
