package dev.spiel4j.data;

/**
 * Where a {@link ShuffledSampler} stands: the epoch and how many items of that epoch's order were drawn.
 */
public record ShufflePosition(long epoch, int index) {

    public static final ShufflePosition START = new ShufflePosition(0, 0);

    public ShufflePosition {
        if (epoch < 0 || index < 0) {
            throw new IllegalArgumentException("negative shuffle position: epoch " + epoch + ", index " + index);
        }
    }
}
