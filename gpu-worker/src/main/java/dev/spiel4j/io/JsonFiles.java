package dev.spiel4j.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Reading the small JSON side files of model directories, with errors that name the file. */
public final class JsonFiles {
    /** Shared mapper; duplicate keys are an error rather than "last one wins". */
    public static final ObjectMapper MAPPER = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private JsonFiles() {
    }

    /** The file's top-level JSON object, or a {@link ModelFormatException} if it is missing or not an object. */
    public static ObjectNode readObject(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException(file, "not found");
        }
        JsonNode node;
        try {
            node = MAPPER.readTree(file.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(file, "is not valid JSON: " + e.getMessage(), e);
        }
        if (node == null || !node.isObject()) {
            throw new ModelFormatException(file, "is not a JSON object");
        }
        return (ObjectNode) node;
    }

    /**
     * One line of a JSON-lines file as its object; an {@link IllegalArgumentException} naming {@code where}
     * ({@code file:line}) if it is not valid JSON or not an object.
     */
    public static ObjectNode objectLine(String where, String line) {
        JsonNode node;
        try {
            node = MAPPER.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(where + ": not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(where + ": not a JSON object");
        }
        return (ObjectNode) node;
    }

    /** Like {@link #readObject} but an absent file reads as an empty object. */
    public static ObjectNode readOptionalObject(Path file) {
        return Files.exists(file) ? readObject(file) : MAPPER.createObjectNode();
    }
}
