package dev.spiel4j.peft;

import ai.djl.ndarray.types.Shape;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A targeted weight matrix: its module path and its {@code [rows = out, cols = in]} shape. */
public record TargetMatrix(String module, int rows, int cols) {
    private static final Pattern BLOCK_WEIGHT = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)\\.weight");

    public TargetMatrix {
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException(module + ": weight shape [" + rows + ", " + cols + "] is not a matrix");
        }
    }

    public long size() {
        return (long) rows * cols;
    }

    /**
     * The block linears among the weights {@code shapes} whose short name ({@code self_attn.q_proj}, ...) is in
     * {@code shortNames}, ordered by layer and then by the order of {@code shortNames}. Shapes rather than arrays:
     * block linears stored as NF4 are targets without a dense array. Refuses a target list that matches nothing.
     */
    public static List<TargetMatrix> resolve(Map<String, Shape> shapes, List<String> shortNames) {
        record Found(int layer, int order, TargetMatrix matrix) {
        }
        List<Found> found = new ArrayList<>();
        for (Map.Entry<String, Shape> e : shapes.entrySet()) {
            Matcher m = BLOCK_WEIGHT.matcher(e.getKey());
            if (!m.matches() || !shortNames.contains(m.group(2))) {
                continue;
            }
            long[] shape = e.getValue().getShape();
            if (shape.length != 2) {
                throw new IllegalArgumentException("target '" + e.getKey() + "' has shape " + Arrays.toString(shape)
                        + ", not a matrix");
            }
            String module = e.getKey().substring(0, e.getKey().length() - ".weight".length());
            found.add(new Found(Integer.parseInt(m.group(1)), shortNames.indexOf(m.group(2)),
                    new TargetMatrix(module, Math.toIntExact(shape[0]), Math.toIntExact(shape[1]))));
        }
        if (found.isEmpty()) {
            throw new IllegalArgumentException("no model weight matches the targets " + shortNames);
        }
        found.sort(Comparator.comparingInt(Found::layer).thenComparingInt(Found::order));
        return found.stream().map(Found::matrix).toList();
    }
}
