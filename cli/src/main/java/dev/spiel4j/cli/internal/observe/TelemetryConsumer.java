package dev.spiel4j.cli.internal.observe;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.RunEvent;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads the metrics and events topics together, and the dead-letters topic where it exists, without a consumer group
 * (so nothing is committed and any number of readers can follow a run): every partition of the topics is assigned,
 * from the beginning or from the end.
 */
final class TelemetryConsumer implements AutoCloseable {

    /** A record of either topic, parsed. */
    sealed interface Record permits StepRecord, EventRecord, DeadLetterRecord, Unreadable {
        /** {@code topic/partition@offset}. */
        String where();
    }

    record StepRecord(String where, Metrics metrics) implements Record {
    }

    record EventRecord(String where, RunEvent event) implements Record {
    }

    record DeadLetterRecord(String where, DeadLetter deadLetter) implements Record {
    }

    /** A record that does not parse as its topic's message; {@code key} is its key (the run id) or "". */
    record Unreadable(String where, String key, String problem) implements Record {
    }

    private final String bootstrapServers;
    private final Topics topics;
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final List<TopicPartition> partitions = new ArrayList<>();

    TelemetryConsumer(String bootstrapServers, Topics topics, String clientId) {
        this.bootstrapServers = bootstrapServers;
        this.topics = topics;
        Map<String, Object> config = new HashMap<>();
        config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        config.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        config.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        this.consumer = new KafkaConsumer<>(config, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /**
     * Assigns every partition of both topics, waiting for them to exist (and for Kafka to answer) until
     * {@code deadlineNanos} ({@link System#nanoTime()} scale).
     *
     * @throws IOException naming the topics and the broker when they still do not both exist at the deadline
     */
    void assign(boolean fromBeginning, long deadlineNanos) throws IOException {
        while (true) {
            String problem;
            try {
                List<TopicPartition> found = new ArrayList<>();
                for (String topic : List.of(topics.metrics(), topics.events(), topics.deadLetters())) {
                    List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(5));
                    for (PartitionInfo info : infos == null ? List.<PartitionInfo>of() : infos) {
                        found.add(new TopicPartition(topic, info.partition()));
                    }
                }
                if (found.stream().anyMatch(p -> p.topic().equals(topics.metrics()))
                        && found.stream().anyMatch(p -> p.topic().equals(topics.events()))) {
                    partitions.addAll(found);
                    consumer.assign(partitions);
                    if (fromBeginning) {
                        consumer.seekToBeginning(partitions);
                    } else {
                        consumer.seekToEnd(partitions);
                    }
                    partitions.forEach(consumer::position); // resolve the lazy seek now, not at the first poll
                    return;
                }
                problem = "topics '" + topics.metrics() + "' and '" + topics.events() + "' do not exist on "
                        + bootstrapServers + " (no run has started there)";
            } catch (TimeoutException e) {
                problem = "Kafka at " + bootstrapServers + " does not answer: " + e.getMessage();
            }
            if (System.nanoTime() > deadlineNanos) {
                throw new IOException(problem);
            }
            sleep(Duration.ofMillis(500));
        }
    }

    /** The current end offset of every assigned partition. */
    Map<TopicPartition, Long> endOffsets() {
        return consumer.endOffsets(partitions);
    }

    /** Whether every assigned partition has been read up to {@code end}. */
    boolean reached(Map<TopicPartition, Long> end) {
        for (TopicPartition p : partitions) {
            if (consumer.position(p) < end.getOrDefault(p, 0L)) {
                return false;
            }
        }
        return true;
    }

    /**
     * Reads every record from the beginning to the topics' current end, handing each to {@code sink}.
     *
     * @throws IOException when a topic does not exist or the end is not reached within {@code timeout}
     */
    void readToEnd(Duration timeout, String what, RecordSink sink) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        assign(true, deadline);
        Map<TopicPartition, Long> end = endOffsets();
        while (!reached(end)) {
            if (System.nanoTime() > deadline) {
                throw new IOException("timed out after " + timeout + " reading " + what + " from " + bootstrapServers);
            }
            for (Record r : poll(Duration.ofMillis(200))) {
                sink.accept(r);
            }
        }
    }

    interface RecordSink {
        void accept(Record r) throws IOException;
    }

    List<Record> poll(Duration timeout) {
        List<Record> out = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(timeout)) {
            String where = r.topic() + "/" + r.partition() + "@" + r.offset();
            String key = r.key() == null ? "" : new String(r.key(), StandardCharsets.UTF_8);
            try {
                if (r.value() == null) {
                    out.add(new Unreadable(where, key, "empty record"));
                } else if (r.topic().equals(topics.metrics())) {
                    out.add(new StepRecord(where, Metrics.parseFrom(r.value())));
                } else if (r.topic().equals(topics.deadLetters())) {
                    out.add(new DeadLetterRecord(where, DeadLetter.parseFrom(r.value())));
                } else {
                    out.add(new EventRecord(where, RunEvent.parseFrom(r.value())));
                }
            } catch (InvalidProtocolBufferException e) {
                String message = r.topic().equals(topics.metrics()) ? "Metrics"
                        : r.topic().equals(topics.deadLetters()) ? "DeadLetter" : "RunEvent";
                out.add(new Unreadable(where, key, "not a spiel4j.v1 " + message + " message: " + e.getMessage()));
            }
        }
        return out;
    }

    @Override
    public void close() {
        consumer.close();
    }

    private static void sleep(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new org.apache.kafka.common.errors.InterruptException(e);
        }
    }
}
