package dev.spiel4j.kafka;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.DataPosition;
import dev.spiel4j.proto.v1.FileCursor;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/** Helpers shared by the Kafka tests. */
final class KafkaTestSupport {

    private KafkaTestSupport() {
    }

    /** A file of {@code size} seeded random bytes. */
    static Path randomFile(Path dir, String name, int size, long seed) throws IOException {
        byte[] bytes = new byte[size];
        new Random(seed).nextBytes(bytes);
        return Files.write(dir.resolve(name), bytes);
    }

    static CheckpointManifest header(String runId, String checkpointId, long step) {
        return CheckpointManifest.newBuilder()
                .setRunId(runId).setCheckpointId(checkpointId).setStep(step)
                .setMethod("spiel-ag").setBaseFingerprint("test-fingerprint")
                .setDataPosition(DataPosition.newBuilder().setFile(FileCursor.newBuilder()
                        .setPath("data.jsonl").setEpoch(1).setNextRecord(17)))
                .build();
    }

    /** Every record of {@code topic}, from the beginning to the current end. */
    static List<ConsumerRecord<byte[], byte[]>> readAll(String bootstrap, String topic) {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Map.of("bootstrap.servers", bootstrap),
                new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (PartitionInfo info : consumer.partitionsFor(topic)) {
                partitions.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (partitions.stream().anyMatch(p -> consumer.position(p) < end.get(p))) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("timed out reading " + topic);
                }
                consumer.poll(Duration.ofMillis(100)).forEach(records::add);
            }
            return records;
        }
    }
}
