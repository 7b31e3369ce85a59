package dev.spiel4j.kafka;

import org.junit.jupiter.api.Tag;
import static dev.spiel4j.kafka.KafkaTestSupport.header;
import static dev.spiel4j.kafka.KafkaTestSupport.randomFile;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.Metrics;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The publishers ride out a broker that goes away and comes back: the Kafka client keeps and retries the records,
 * the outage is reported from their missing acknowledgements, and every record arrives exactly once.
 */
@Tag("kafka")
class ServiceProducerTest {

    @TempDir
    Path dir;

    @Test
    void ridesOutABrokerRestartAndDeliversEverythingExactlyOnce() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            Topics topics = Topics.withPrefix("outage.");
            ProducerSettings settings = ProducerSettings.defaults(kafka.bootstrapServers(), "outage-test")
                    .withOutageAfter(Duration.ofMillis(1500))
                    .withBackoff(Duration.ofMillis(100), Duration.ofMillis(500));
            TopicAdmin.ensureTopics(kafka.bootstrapServers(), topics, 2, (short) 1, settings.maxRecordBytes());
            CountDownLatch outageStarted = new CountDownLatch(1);
            CountDownLatch outageEnded = new CountDownLatch(1);
            try (ServiceProducer producer = new ServiceProducer(settings);
                 CheckpointPublisher checkpoints = new CheckpointPublisher(producer, topics.checkpoints(), 1024,
                         settings.maxRecordBytes())) {
                producer.addListener(new OutageListener() {
                    @Override
                    public void outageStarted(Instant since, String cause, int waitingRecords) {
                        outageStarted.countDown();
                    }

                    @Override
                    public void outageEnded(Instant since, Duration duration) {
                        outageEnded.countDown();
                    }
                });
                ProtoPublisher<Metrics> metrics = ProtoPublisher.metrics(producer, topics);
                List<CompletableFuture<?>> acks = new java.util.concurrent.CopyOnWriteArrayList<>();
                for (int step = 0; step < 5; step++) {
                    acks.add(metrics.publish(metric(step)));
                }
                CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
                assertTrue(producer.status().available());

                kafka.stop();
                // Publishing may block while the client has no metadata (max.block.ms), as the Publisher actor
                // does on its blocking dispatcher: here it runs on a thread of its own.
                Path delta = randomFile(dir, "delta.sft", 5_000, 11);
                CompletableFuture<CompletableFuture<CheckpointManifest>> publishing = CompletableFuture.supplyAsync(() -> {
                    for (int step = 5; step < 20; step++) {
                        acks.add(metrics.publish(metric(step)));
                    }
                    return checkpoints.publish(header("run-outage", "step-20", 20),
                            List.of(new CheckpointPart("delta.sft", delta)));
                });

                assertTrue(outageStarted.await(30, TimeUnit.SECONDS), "outage reported");
                PublisherStatus during = producer.status();
                assertFalse(during.available());
                assertTrue(during.waitingRecords() >= 1, "waiting: " + during);
                assertEquals(5, during.deliveredRecords(), "nothing delivered during the outage: " + during);

                kafka.restart();
                CheckpointManifest manifest = publishing.get(60, TimeUnit.SECONDS).get(60, TimeUnit.SECONDS);
                CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
                assertTrue(outageEnded.await(10, TimeUnit.SECONDS), "recovery reported");
                PublisherStatus after = producer.status();
                assertTrue(after.available());
                assertEquals(1, after.outages());
                assertEquals(0, after.waitingRecords());

                // Nothing lost and nothing twice: each step is on the topic once, each checkpoint record once,
                // and the checkpoint pulls back intact.
                List<Long> steps = new ArrayList<>();
                for (ConsumerRecord<byte[], byte[]> r : KafkaTestSupport.readAll(kafka.bootstrapServers(),
                        topics.metrics())) {
                    steps.add(parse(r.value()).getStep());
                }
                steps.sort(null);
                assertEquals(LongStream.range(0, 20).boxed().toList(), steps, "steps on the topic");
                List<String> keys = KafkaTestSupport.readAll(kafka.bootstrapServers(), topics.checkpoints()).stream()
                        .map(r -> new String(r.key(), StandardCharsets.UTF_8)).toList();
                assertEquals(new TreeSet<>(keys).size(), keys.size(), "checkpoint records: " + keys);
                PulledCheckpoint pulled = new CheckpointPuller(kafka.bootstrapServers(), topics.checkpoints(),
                        Duration.ofSeconds(20)).pullLatest("run-outage", dir.resolve("out")).orElseThrow();
                assertEquals(manifest, pulled.manifest());
                assertArrayEquals(Files.readAllBytes(delta), Files.readAllBytes(pulled.file("delta.sft")));
            }
        }
    }

    @Test
    void anOutageThatOutlastsTheRunIsReportedAndCloseFailsWhatWasNeverDelivered() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            Topics topics = Topics.withPrefix("lost.");
            ProducerSettings settings = ProducerSettings.defaults(kafka.bootstrapServers(), "lost-test")
                    .withOutageAfter(Duration.ofMillis(300))
                    .withBackoff(Duration.ofMillis(50), Duration.ofMillis(100))
                    .withCloseTimeout(Duration.ofMillis(500));
            TopicAdmin.ensureTopics(kafka.bootstrapServers(), topics, 1, (short) 1, settings.maxRecordBytes());
            ServiceProducer producer = new ServiceProducer(settings);
            ProtoPublisher<Metrics> metrics = ProtoPublisher.metrics(producer, topics);
            metrics.publish(metric(0)).get(30, TimeUnit.SECONDS); // the client now knows the topic's partitions

            kafka.stop();
            // on a thread of its own: publishing may block while the client has no metadata (max.block.ms)
            CompletableFuture<List<CompletableFuture<?>>> publishing = CompletableFuture.supplyAsync(() -> {
                List<CompletableFuture<?>> accepted = new ArrayList<>();
                for (int step = 1; step < 5; step++) {
                    accepted.add(metrics.publish(metric(step)));
                }
                return accepted;
            });
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (producer.status().available() && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            PublisherStatus status = producer.status();
            assertFalse(status.available(), "the outage is reported");
            assertTrue(status.waitingRecords() >= 1, "waiting: " + status);

            producer.close();
            List<CompletableFuture<?>> accepted = publishing.get(30, TimeUnit.SECONDS);
            assertEquals(4, accepted.size());
            for (CompletableFuture<?> f : accepted) {
                assertThrows(ExecutionException.class, () -> f.get(5, TimeUnit.SECONDS));
            }
            PublisherStatus closed = producer.status();
            assertEquals(0, closed.waitingRecords(), "every record has an outcome: " + closed);
            assertEquals(1, closed.deliveredRecords());
            assertNotNull(closed.lastError());
        }
    }

    private static Metrics metric(long step) {
        return Metrics.newBuilder().setRunId("run-outage").setStep(step).setLoss(5.0 - step * 0.1).build();
    }

    private static Metrics parse(byte[] value) throws InvalidProtocolBufferException {
        return Metrics.parseFrom(value);
    }
}
