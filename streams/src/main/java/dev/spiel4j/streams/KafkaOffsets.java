package dev.spiel4j.streams;

import org.apache.kafka.common.TopicPartition;

import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The next offset to read in each assigned partition of one topic: the data position of a Kafka source,
 * stored with checkpoints (never committed to the broker), so a restart reads on from exactly here.
 */
public record KafkaOffsets(String topic, Map<Integer, Long> next) {
    public KafkaOffsets {
        Objects.requireNonNull(topic, "topic");
        if (next.isEmpty()) {
            throw new IllegalArgumentException("no partitions assigned for topic " + topic);
        }
        next.forEach((p, o) -> {
            if (p < 0 || o < 0) {
                throw new IllegalArgumentException("bad offset " + o + " for partition " + p + " of " + topic);
            }
        });
        next = Map.copyOf(new TreeMap<>(next));
    }

    /** Partitions {@code 0..partitions-1} from their first offset. */
    public static KafkaOffsets fromStart(String topic, int partitions) {
        Map<Integer, Long> m = new HashMap<>();
        for (int p = 0; p < partitions; p++) {
            m.put(p, 0L);
        }
        return new KafkaOffsets(topic, m);
    }

    /** These offsets with {@code partition} moved past {@code offset}. */
    public KafkaOffsets after(int partition, long offset) {
        if (!next.containsKey(partition)) {
            throw new IllegalArgumentException("partition " + partition + " of " + topic + " is not assigned");
        }
        Map<Integer, Long> m = new HashMap<>(next);
        m.put(partition, offset + 1);
        return new KafkaOffsets(topic, m);
    }

    /** The assignment for the consumer. */
    public Map<TopicPartition, Long> assignment() {
        Map<TopicPartition, Long> m = new HashMap<>();
        next.forEach((p, o) -> m.put(new TopicPartition(topic, p), o));
        return m;
    }
}
