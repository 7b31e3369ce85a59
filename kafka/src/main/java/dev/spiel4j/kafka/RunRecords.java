package dev.spiel4j.kafka;

import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** What a run has published to a topic so far, read back (a restarted run reads its earlier dead letters). */
public final class RunRecords {
    private RunRecords() {
    }

    /**
     * The values of the records keyed {@code runId} on {@code topic}, oldest first, up to the topic's current end.
     *
     * @throws IOException when the topic does not exist or the end is not reached within {@code timeout}
     */
    public static List<byte[]> values(String bootstrapServers, String topic, String runId, Duration timeout)
            throws IOException {
        RunPartition run = new RunPartition(bootstrapServers, topic, timeout, "spiel4j-run-records");
        byte[] key = runId.getBytes(StandardCharsets.UTF_8);
        List<byte[]> values = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = run.newConsumer()) {
            TopicPartition partition = run.of(consumer, runId);
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            long end = consumer.endOffsets(List.of(partition), timeout).get(partition);
            run.poll(consumer, partition, end, record -> {
                if (Arrays.equals(key, record.key()) && record.value() != null) {
                    values.add(record.value());
                }
            });
        }
        return values;
    }
}
