package dev.spiel4j.streams;

import dev.spiel4j.data.Batch;

import java.util.Objects;

/**
 * A batch and the position right after its last example: a checkpoint taken after training on this batch
 * stores {@code resume}, and a stream started from it yields exactly the examples that follow.
 */
public record BatchWithPosition<P>(Batch batch, DataPosition<P> resume) {
    public BatchWithPosition {
        Objects.requireNonNull(batch, "batch");
        Objects.requireNonNull(resume, "resume");
    }
}
