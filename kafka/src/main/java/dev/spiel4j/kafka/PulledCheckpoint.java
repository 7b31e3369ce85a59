package dev.spiel4j.kafka;

import java.nio.file.Path;
import java.util.Map;

import dev.spiel4j.proto.v1.CheckpointManifest;

/**
 * A checkpoint rebuilt from the checkpoints topic and verified.
 *
 * @param manifest its manifest
 * @param files    each payload part's name and the file it was written to
 */
public record PulledCheckpoint(CheckpointManifest manifest, Map<String, Path> files) {

    public PulledCheckpoint {
        files = Map.copyOf(files);
    }

    /** The file of part {@code name}. */
    public Path file(String name) {
        Path file = files.get(name);
        if (file == null) {
            throw new IllegalArgumentException("checkpoint " + manifest.getCheckpointId() + " has no part '" + name
                    + "'; it has " + files.keySet());
        }
        return file;
    }
}
