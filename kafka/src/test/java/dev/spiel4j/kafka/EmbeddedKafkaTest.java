package dev.spiel4j.kafka;

import org.junit.jupiter.api.Tag;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import dev.spiel4j.proto.v1.Metrics;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A broker on a kept log directory survives the process: a new broker on the same directory has the data. */
@Tag("kafka")
class EmbeddedKafkaTest {

    @TempDir
    Path dir;

    @Test
    void aNewBrokerOnTheSameLogDirectoryKeepsTopicsAndRecords() throws Exception {
        Topics topics = Topics.withPrefix("kept.");
        Path logDir = dir.resolve("kafka");
        try (EmbeddedKafka first = EmbeddedKafka.start(logDir, 0)) {
            TopicAdmin.ensureTopics(first.bootstrapServers(), topics, 1, (short) 1, 1 << 20);
            try (ServiceProducer producer = new ServiceProducer(
                    ProducerSettings.defaults(first.bootstrapServers(), "kept-test"))) {
                ProtoPublisher.metrics(producer, topics)
                        .publish(Metrics.newBuilder().setRunId("run-kept").setStep(7).build())
                        .get(30, TimeUnit.SECONDS);
            }
        }
        assertTrue(logDir.resolve("meta.properties").toFile().isFile(), "close keeps a caller's log directory");
        try (EmbeddedKafka second = EmbeddedKafka.start(logDir, 0)) {
            TopicAdmin.ensureTopics(second.bootstrapServers(), topics, 1, (short) 1, 1 << 20); // idempotent
            List<Long> steps = KafkaTestSupport.readAll(second.bootstrapServers(), topics.metrics()).stream()
                    .map(r -> {
                        try {
                            return Metrics.parseFrom(r.value()).getStep();
                        } catch (Exception e) {
                            throw new AssertionError(e);
                        }
                    }).toList();
            assertEquals(List.of(7L), steps);
        }
    }
}
