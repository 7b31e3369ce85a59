package dev.spiel4j.kafka;

import static dev.spiel4j.kafka.KafkaTestSupport.header;
import static dev.spiel4j.kafka.KafkaTestSupport.randomFile;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.Metrics;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The publishers ride out a broker that goes away and comes back: records are buffered, then delivered. */
class ResilientProducerTest {

    @TempDir
    Path dir;

    @Test
    void buffersDuringABrokerOutageAndDeliversEverythingAfterwards() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            Topics topics = Topics.withPrefix("outage.");
            ProducerSettings settings = ProducerSettings.defaults(kafka.bootstrapServers(), "outage-test")
                    .withDeliveryTimeout(Duration.ofMillis(1500))
                    .withBackoff(Duration.ofMillis(100), Duration.ofMillis(500));
            TopicAdmin.ensureTopics(kafka.bootstrapServers(), topics, 2, (short) 1, settings.maxRecordBytes());
            CountDownLatch outageStarted = new CountDownLatch(1);
            CountDownLatch outageEnded = new CountDownLatch(1);
            try (ResilientProducer producer = new ResilientProducer(settings);
                 CheckpointPublisher checkpoints = new CheckpointPublisher(producer, topics.checkpoints(), 1024,
                         settings.maxRecordBytes())) {
                producer.addListener(new OutageListener() {
                    @Override
                    public void outageStarted(Instant since, Throwable cause, int bufferedRecords) {
                        outageStarted.countDown();
                    }

                    @Override
                    public void outageEnded(Instant since, Duration duration) {
                        outageEnded.countDown();
                    }
                });
                ProtoPublisher<Metrics> metrics = ProtoPublisher.metrics(producer, topics);
                List<CompletableFuture<?>> acks = new ArrayList<>();
                for (int step = 0; step < 5; step++) {
                    acks.add(metrics.publish(metric(step)));
                }
                CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
                assertTrue(producer.status().available());

                kafka.stop();
                for (int step = 5; step < 20; step++) {
                    acks.add(metrics.publish(metric(step)));
                }
                Path delta = randomFile(dir, "delta.sft", 5_000, 11);
                CompletableFuture<CheckpointManifest> checkpoint = checkpoints.publish(
                        header("run-outage", "step-20", 20), List.of(new CheckpointPart("delta.sft", delta)));

                assertTrue(outageStarted.await(30, TimeUnit.SECONDS), "outage reported");
                PublisherStatus during = producer.status();
                assertFalse(during.available());
                assertTrue(during.bufferedRecords() >= 15, "buffered: " + during);
                assertFalse(checkpoint.isDone());

                kafka.restart();
                CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
                CheckpointManifest manifest = checkpoint.get(60, TimeUnit.SECONDS);
                assertTrue(outageEnded.await(10, TimeUnit.SECONDS), "recovery reported");
                PublisherStatus after = producer.status();
                assertTrue(after.available());
                assertEquals(1, after.outages());
                assertEquals(0, after.bufferedRecords());

                // Nothing lost: every step is on the topic (at least once), and the checkpoint pulls back intact.
                Set<Long> steps = new TreeSet<>();
                for (ConsumerRecord<byte[], byte[]> r : KafkaTestSupport.readAll(kafka.bootstrapServers(),
                        topics.metrics())) {
                    steps.add(parse(r.value()).getStep());
                }
                assertEquals(20, steps.size(), "steps on the topic: " + steps);
                PulledCheckpoint pulled = new CheckpointPuller(kafka.bootstrapServers(), topics.checkpoints(),
                        Duration.ofSeconds(20)).pullLatest("run-outage", dir.resolve("out")).orElseThrow();
                assertEquals(manifest, pulled.manifest());
                assertArrayEquals(Files.readAllBytes(delta), Files.readAllBytes(pulled.file("delta.sft")));
            }
        }
    }

    @Test
    void boundedBufferBlocksSendersAndCloseFailsWhatWasNeverDelivered() throws Exception {
        // Nothing listens on this port: every attempt fails, as in an outage that outlasts the run.
        String nowhere;
        try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            nowhere = "127.0.0.1:" + socket.getLocalPort();
        }
        ProducerSettings settings = new ProducerSettings(nowhere, "bounded-test", Duration.ofMillis(300),
                Duration.ofMillis(50), Duration.ofMillis(100), 4096, 1024, Duration.ofMillis(500));
        ResilientProducer producer = new ResilientProducer(settings);
        List<CompletableFuture<?>> accepted = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            accepted.add(producer.send("t", null, new byte[1024]));
        }
        CompletableFuture<Object> fifth = new CompletableFuture<>();
        Thread blocked = new Thread(() -> {
            try {
                fifth.complete(producer.send("t", null, new byte[1024]));
            } catch (RuntimeException e) {
                fifth.completeExceptionally(e);
            }
        });
        blocked.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (producer.status().available() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        PublisherStatus status = producer.status();
        assertFalse(status.available(), "the outage is reported");
        assertFalse(fifth.isDone(), "a send into a full buffer blocks");
        assertEquals(4, status.bufferedRecords());
        assertEquals(4096, status.bufferedBytes());
        assertTrue(org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> producer.send("t", null, new byte[2000])).getMessage().contains("maxRecordBytes"));

        producer.close();
        blocked.join(5000);
        assertTrue(fifth.isCompletedExceptionally(), "the blocked send is refused once closed");
        for (CompletableFuture<?> f : accepted) {
            java.util.concurrent.ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(
                    java.util.concurrent.ExecutionException.class, () -> f.get(5, TimeUnit.SECONDS));
            assertTrue(e.getCause().getMessage().contains("not delivered"), e.getCause().getMessage());
        }
    }

    private static Metrics metric(long step) {
        return Metrics.newBuilder().setRunId("run-outage").setStep(step).setLoss(5.0 - step * 0.1).build();
    }

    private static Metrics parse(byte[] value) throws InvalidProtocolBufferException {
        return Metrics.parseFrom(value);
    }
}
