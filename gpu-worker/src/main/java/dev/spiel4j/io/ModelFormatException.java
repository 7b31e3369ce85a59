package dev.spiel4j.io;

import java.nio.file.Path;

/**
 * A model, checkpoint or tokenizer file is malformed or unsupported: truncated, inconsistent, of an unsupported type,
 * or not matching its own configuration. The message starts with the file, then names the tensor or field and what
 * is wrong with it, so a user can act on it without a stack trace.
 */
public class ModelFormatException extends IllegalArgumentException {
    private final transient Path file;

    public ModelFormatException(Path file, String message) {
        super(file + ": " + message);
        this.file = file;
    }

    public ModelFormatException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
        this.file = file;
    }

    /** The offending file. */
    public Path file() {
        return file;
    }
}
