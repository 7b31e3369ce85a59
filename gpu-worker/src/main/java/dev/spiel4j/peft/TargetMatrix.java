package dev.spiel4j.peft;

/** A targeted weight matrix: its module path and its {@code [rows = out, cols = in]} shape. */
public record TargetMatrix(String module, int rows, int cols) {
    public TargetMatrix {
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(module + ": weight shape [" + rows + ", " + cols + "] is not a matrix");
        }
    }

    public long size() {
        return (long) rows * cols;
    }
}
