package dev.spiel4j.kafka;

import java.nio.file.Path;
import java.util.Objects;

/**
 * A file that goes into a checkpoint's payload under {@code name} (e.g. the sparse fine-tuning file and the
 * training-state file). The puller writes it back under the same name.
 */
public record CheckpointPart(String name, Path file) {

    public CheckpointPart {
        CheckpointKeys.requireId("checkpoint part name", name);
        Objects.requireNonNull(file, "file");
    }
}
