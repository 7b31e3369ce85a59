package dev.spiel4j.checkpoint;

/**
 * The trained sparse delta of one weight matrix, host side: flat row-major indices into the {@code [rows, cols]}
 * matrix ({@code row * cols + col}) and their values. This is what files, topics and exports carry.
 *
 * @param module the module path, e.g. {@code model.layers.0.self_attn.q_proj} (the weight is {@code module + ".weight"})
 */
public record DeltaTensor(String module, int rows, int cols, long[] indices, float[] values) {
    public DeltaTensor {
        if (indices.length != values.length) {
            throw new IllegalArgumentException(module + ": " + indices.length + " indices but " + values.length + " values");
        }
        long numel = (long) rows * cols;
        for (long i : indices) {
            if (i < 0 || i >= numel) {
                throw new IllegalArgumentException(module + ": index " + i + " outside [" + rows + ", " + cols + "]");
            }
        }
        indices = indices.clone();
        values = values.clone();
    }

    @Override
    public long[] indices() {
        return indices.clone();
    }

    @Override
    public float[] values() {
        return values.clone();
    }

    public int size() {
        return indices.length;
    }
}
