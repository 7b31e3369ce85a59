package dev.spiel4j.io;

import java.nio.file.Path;

/**
 * A model or tokenizer file that cannot be used: truncated, inconsistent, of an unsupported type, or not matching
 * its own configuration. The message names the file, the item (tensor, key, field) and what is wrong.
 */
public class ModelFormatException extends IllegalArgumentException {

    public ModelFormatException(Path file, String problem) {
        super(file + ": " + problem);
    }

    public ModelFormatException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
