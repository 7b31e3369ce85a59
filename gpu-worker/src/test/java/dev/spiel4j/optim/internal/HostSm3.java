package dev.spiel4j.optim.internal;

/**
 * The reference for the engine's {@link Sm3}: the same optimizer on Java arrays, one slot at a time (it was the
 * production optimizer until the state moved to the engine). SM3 (Anil et al., 2019) restricted to the active slots of
 * a sparse delta on an {@code [rows, cols]} matrix: a row accumulator {@code r[rows]} and a column accumulator
 * {@code c[cols]} replace Adam's per-element second moments.
 *
 * <p>For each slot at (i, j) with gradient g: {@code nu = min(r[i], c[j]) + g^2}; then {@code r[i]} becomes the max
 * of nu over the slots in row i and {@code c[j]} the max over the slots in column j (rows and columns without a
 * slot keep their value); the slot moves by {@code -lr * g / sqrt(nu + eps)} after decoupled weight decay
 * {@code phi *= 1 - lr * wd}. No per-slot state, so regrown slots need no optimizer reset.
 */
public final class HostSm3 {
    private final int rows;
    private final int cols;
    private final float eps;
    private final float weightDecay;
    private final float[] r;
    private final float[] c;

    public HostSm3(int rows, int cols, float eps, float weightDecay) {
        if (rows <= 0 || cols <= 0 || !(eps > 0) || !(weightDecay >= 0)) {
            throw new IllegalArgumentException("SM3 needs a positive shape, eps > 0, weight decay >= 0; got ["
                    + rows + ", " + cols + "] eps=" + eps + " weightDecay=" + weightDecay);
        }
        this.rows = rows;
        this.cols = cols;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.r = new float[rows];
        this.c = new float[cols];
    }

    /**
     * @param indices   flat {@code row * cols + col} index of every slot
     * @param params    slot values, updated in place
     * @param grads     slot gradients
     * @param gradScale applied to every gradient first (clipping)
     */
    public void step(long[] indices, float[] params, float[] grads, float lr, float gradScale) {
        if (params.length != indices.length || grads.length != indices.length) {
            throw new IllegalArgumentException("SM3 got " + indices.length + " indices, " + params.length
                    + " params and " + grads.length + " gradients");
        }
        float[] newR = r.clone();
        float[] newC = c.clone();
        boolean[] rowSeen = new boolean[rows];
        boolean[] colSeen = new boolean[cols];
        float decay = 1f - lr * weightDecay;
        for (int s = 0; s < indices.length; s++) {
            int i = (int) (indices[s] / cols);
            int j = (int) (indices[s] % cols);
            float g = grads[s] * gradScale;
            float nu = Math.min(r[i], c[j]) + g * g;
            newR[i] = rowSeen[i] ? Math.max(newR[i], nu) : nu;
            newC[j] = colSeen[j] ? Math.max(newC[j], nu) : nu;
            rowSeen[i] = true;
            colSeen[j] = true;
            params[s] = (float) (params[s] * decay - lr * g / Math.sqrt(nu + eps));
        }
        System.arraycopy(newR, 0, r, 0, rows);
        System.arraycopy(newC, 0, c, 0, cols);
    }

    public float[] rowAccumulator() {
        return r.clone();
    }

    public float[] columnAccumulator() {
        return c.clone();
    }

    public void restore(float[] rowAcc, float[] colAcc) {
        if (rowAcc.length != rows || colAcc.length != cols) {
            throw new IllegalArgumentException("SM3 state for [" + rows + ", " + cols + "] cannot take accumulators of "
                    + rowAcc.length + " and " + colAcc.length);
        }
        System.arraycopy(rowAcc, 0, r, 0, rows);
        System.arraycopy(colAcc, 0, c, 0, cols);
    }

    public long stateBytes() {
        return 4L * (rows + cols);
    }
}
