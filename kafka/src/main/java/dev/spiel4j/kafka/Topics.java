package dev.spiel4j.kafka;

import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * The names of a deployment's topics, all sharing one prefix (e.g. {@code "spiel4j."} gives
 * {@code spiel4j.checkpoints}, {@code spiel4j.metrics}, ...). Every record on them is keyed by run id.
 *
 * @param checkpoints compacted; checkpoint chunks and manifests ({@code CheckpointRecord})
 * @param metrics     one {@code Metrics} per step
 * @param events      {@code RunEvent}: status changes, reselections, evaluations, checkpoints, outages
 * @param deadLetters {@code DeadLetter}: records the data pipeline could not use
 * @param input       {@code TrainingExample}: what a continual run consumes
 */
public record Topics(String checkpoints, String metrics, String events, String deadLetters, String input) {

    /** Kafka's own rule for topic names. */
    private static final Pattern LEGAL = Pattern.compile("[a-zA-Z0-9._-]{1,249}");

    public Topics {
        for (String name : new String[] {checkpoints, metrics, events, deadLetters, input}) {
            Objects.requireNonNull(name, "topic name");
            if (!LEGAL.matcher(name).matches()) {
                throw new IllegalArgumentException("illegal Kafka topic name '" + name
                        + "': use 1-249 characters from [a-zA-Z0-9._-]");
            }
        }
    }

    /** The standard topic names under {@code prefix} (may be empty). */
    public static Topics withPrefix(String prefix) {
        Objects.requireNonNull(prefix, "topic prefix");
        return new Topics(prefix + "checkpoints", prefix + "metrics", prefix + "events",
                prefix + "dead-letters", prefix + "input");
    }

    public List<String> all() {
        return List.of(checkpoints, metrics, events, deadLetters, input);
    }
}
