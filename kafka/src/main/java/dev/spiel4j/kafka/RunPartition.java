package dev.spiel4j.kafka;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.io.IOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Reading one run's partition of a topic without a consumer group (nothing committed, any number of readers): the
 * service keys every record of a run by its id, so they all sit in the partition the id hashes to
 * ({@link ServiceProducer#partitionOf}).
 *
 * @param timeout bound on each read pass (metadata, offsets, polling to the end)
 */
record RunPartition(String bootstrapServers, String topic, Duration timeout, String clientId) {

    RunPartition {
        Objects.requireNonNull(bootstrapServers, "bootstrapServers");
        Objects.requireNonNull(topic, "topic");
        Objects.requireNonNull(timeout, "timeout");
    }

    KafkaConsumer<byte[], byte[]> newConsumer() {
        Map<String, Object> config = new HashMap<>();
        config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        config.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        config.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        config.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) timeout.toMillis());
        return new KafkaConsumer<>(config, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** The partition {@code runId}'s records are in. */
    TopicPartition of(KafkaConsumer<byte[], byte[]> consumer, String runId) throws IOException {
        List<PartitionInfo> partitions = consumer.partitionsFor(topic, timeout);
        if (partitions == null || partitions.isEmpty()) {
            throw new IOException("topic '" + topic + "' does not exist on " + bootstrapServers);
        }
        return new TopicPartition(topic, ServiceProducer.partitionOf(runId, partitions.size()));
    }

    /** Hands every record from the consumer's position up to {@code endOffset} (exclusive) to {@code handler}. */
    void poll(KafkaConsumer<byte[], byte[]> consumer, TopicPartition partition, long endOffset,
              Consumer<ConsumerRecord<byte[], byte[]>> handler) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (consumer.position(partition, timeout) < endOffset) {
            if (System.nanoTime() > deadline) {
                throw new IOException("timed out after " + timeout + " reading topic '" + topic + "' partition "
                        + partition.partition() + " up to offset " + endOffset + " from " + bootstrapServers);
            }
            for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                if (record.offset() < endOffset) {
                    handler.accept(record);
                }
            }
        }
    }
}
