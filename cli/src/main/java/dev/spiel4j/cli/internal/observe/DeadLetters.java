package dev.spiel4j.cli.internal.observe;

import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.proto.v1.SourceLocation;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** The records a run could not use, read back from the dead-letters topic: where each came from, and why. */
public final class DeadLetters {
    /** Characters of a record's raw bytes an excerpt shows. */
    static final int EXCERPT_CHARS = 80;

    private DeadLetters() {
    }

    /**
     * One unusable record.
     *
     * @param source  where it came from: {@code path:line} or {@code topic/partition@offset}
     * @param reason  the machine-readable category ({@code malformed_json}, {@code too_long}, ...)
     * @param detail  what exactly was wrong
     * @param excerpt the start of the record as text, control characters escaped, "..." when cut
     * @param where   the dead letter's own place on the topic
     */
    public record Entry(String source, String reason, String detail, String excerpt, String where) {
    }

    /**
     * The dead letters of run {@code runId}, in the order they were published, from the beginning of the topic to
     * its current end.
     *
     * @throws IOException when the topics do not exist, a record of the run does not parse, or the end is not reached
     *     within {@code timeout}
     */
    public static List<Entry> read(String bootstrapServers, Topics topics, String runId, Duration timeout)
            throws IOException {
        List<Entry> entries = new ArrayList<>();
        try (TelemetryConsumer consumer = new TelemetryConsumer(bootstrapServers, topics, "spiel4j-dead-letters")) {
            consumer.readToEnd(timeout, "the dead letters of run '" + runId + "'", r -> {
                if (r instanceof TelemetryConsumer.Unreadable u && runId.equals(u.key())) {
                    throw new IOException(u.where() + ": " + u.problem());
                }
                if (r instanceof TelemetryConsumer.DeadLetterRecord d && runId.equals(d.deadLetter().getRunId())) {
                    entries.add(entry(d.where(), d.deadLetter()));
                }
            });
        }
        return entries;
    }

    static Entry entry(String where, DeadLetter d) {
        return new Entry(source(d.getSource()), d.getReason(), d.getDetail(),
                excerpt(d.getRaw().toString(StandardCharsets.UTF_8)), where);
    }

    private static String source(SourceLocation s) {
        return switch (s.getLocationCase()) {
            case FILE -> s.getFile().getPath() + ":" + s.getFile().getLine();
            case TOPIC -> s.getTopic().getTopic() + "/" + s.getTopic().getPartition() + "@" + s.getTopic().getOffset();
            case LOCATION_NOT_SET -> "unknown";
        };
    }

    /** The first {@link #EXCERPT_CHARS} characters, with newlines, tabs and other control characters escaped. */
    static String excerpt(String raw) {
        StringBuilder out = new StringBuilder();
        int shown = Math.min(raw.length(), EXCERPT_CHARS);
        for (int i = 0; i < shown; i++) {
            char c = raw.charAt(i);
            switch (c) {
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (Character.isISOControl(c)) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return shown < raw.length() ? out + "..." : out.toString();
    }
}
