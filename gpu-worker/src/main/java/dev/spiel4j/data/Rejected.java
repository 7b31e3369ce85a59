package dev.spiel4j.data;

import java.util.Objects;

/**
 * A record that cannot be trained on, with the reason; goes to the dead letters while the data goes on.
 *
 * @param sourcePosition where the record is, e.g. {@code dolly.jsonl:17} or {@code examples-0@42}
 * @param reason         what is wrong, precise enough to fix the record (field, type, byte offset)
 * @param raw            the record's text (invalid UTF-8 replaced), cut to {@value #MAX_RAW_CHARS} characters
 */
public record Rejected(String sourcePosition, String reason, String raw) implements Parsed, Encoded {

    /** Dead letters carry a preview of the record, not megabytes of it. */
    public static final int MAX_RAW_CHARS = 2000;

    public Rejected {
        Objects.requireNonNull(sourcePosition, "sourcePosition");
        Objects.requireNonNull(reason, "reason");
        Objects.requireNonNull(raw, "raw");
        if (raw.length() > MAX_RAW_CHARS) {
            raw = raw.substring(0, MAX_RAW_CHARS);
        }
    }
}
