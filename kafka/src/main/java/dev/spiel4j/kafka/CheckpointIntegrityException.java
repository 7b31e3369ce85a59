package dev.spiel4j.kafka;

import java.io.IOException;

/** A checkpoint on the topic is incomplete, or its data does not match its checksums or its manifest. */
public final class CheckpointIntegrityException extends IOException {

    public CheckpointIntegrityException(String message) {
        super(message);
    }
}
