package dev.spiel4j.data;

/**
 * Turns one record's bytes into an example or a rejection; never throws for bad records. Pluggable so that a
 * Kafka topic can carry another encoding than the files' (see {@link ExampleParser#TEXT}, {@link ExampleParser#JSON}).
 */
@FunctionalInterface
public interface RecordDecoder {
    Parsed decode(String sourceId, byte[] bytes);
}
