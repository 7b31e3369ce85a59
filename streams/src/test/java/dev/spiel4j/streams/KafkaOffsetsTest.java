package dev.spiel4j.streams;

import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class KafkaOffsetsTest {

    @Test
    void afterMovesOnlyThatPartitionPastTheRecord() {
        KafkaOffsets start = KafkaOffsets.fromStart("t", 3);
        KafkaOffsets moved = start.after(1, 41).after(2, 0);
        assertEquals(Map.of(0, 0L, 1, 42L, 2, 1L), moved.next());
        assertEquals(Map.of(0, 0L, 1, 0L, 2, 0L), start.next(), "immutable");
        assertEquals(Map.of(new TopicPartition("t", 0), 0L, new TopicPartition("t", 1), 42L,
                new TopicPartition("t", 2), 1L), moved.assignment());
        assertEquals(moved, KafkaOffsets.fromStart("t", 3).after(2, 0).after(1, 41), "a value");
    }

    @Test
    void badOffsetsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> KafkaOffsets.fromStart("t", 1).after(1, 0));
        assertThrows(IllegalArgumentException.class, () -> new KafkaOffsets("t", Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new KafkaOffsets("t", Map.of(0, -1L)));
    }
}
