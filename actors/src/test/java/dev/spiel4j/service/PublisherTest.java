package dev.spiel4j.service;

import com.google.protobuf.ByteString;
import com.typesafe.config.ConfigFactory;
import dev.spiel4j.kafka.CheckpointPart;
import dev.spiel4j.kafka.CheckpointPublisher;
import dev.spiel4j.kafka.ProducerSettings;
import dev.spiel4j.kafka.ProtoPublisher;
import dev.spiel4j.kafka.ServiceProducer;
import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.CheckpointRecord;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.PayloadPart;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.pekko.actor.testkit.typed.annotations.JUnit5TestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.JUnit5TestKitBuilder;
import org.apache.pekko.actor.testkit.typed.javadsl.LoggingTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestKitJUnit5Extension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The publisher over the service's real Kafka side ({@link ServiceProducer}, {@link ProtoPublisher},
 * {@link CheckpointPublisher}) with Kafka's {@link MockProducer} as the client, so the test sees every record handed
 * to Kafka and decides when each is acknowledged or refused: each message becomes its record(s) on its topic, keyed
 * by the run's id; a checkpoint is its chunks and then, once they are acknowledged, its manifest; a flush is answered
 * once everything published before it was acknowledged or refused; a refused record is logged and holds nothing up,
 * nor does a checkpoint whose files cannot be read.
 */
@ExtendWith(TestKitJUnit5Extension.class)
// one actor system for the class: the extension shuts down only the kit of the last test instance
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PublisherTest {
    private static final String RUN = "publisher-test";
    private static final Topics TOPICS = Topics.withPrefix("test.");
    private static final int CHECKPOINT_PARTITIONS = 3;
    private static final int CHUNK_BYTES = 1024;

    @JUnit5TestKit
    ActorTestKit kit = new JUnit5TestKitBuilder().withCustomConfig(ConfigFactory.parseString(
            // generous: what is expected comes at once on an idle machine, but this one may be busy
            "pekko.actor.testkit.typed { single-expect-default = 30s, filter-leeway = 30s }")).build();

    /** Every record handed to Kafka, in order. */
    private TestProbe<ProducerRecord<byte[], byte[]>> sent;
    /** Acknowledges nothing until the test says. */
    private MockProducer<byte[], byte[]> kafka;
    private ServiceProducer producer;
    private CheckpointPublisher checkpoints;
    private ActorRef<Publisher.Command> publisher;

    @BeforeEach
    void startPublisher() {
        sent = kit.createTestProbe();
        ActorRef<ProducerRecord<byte[], byte[]>> handedOver = sent.getRef();
        // the checkpoint publisher puts a run's records on the partition its id hashes to: the topic needs some
        Node broker = new Node(0, "localhost", 9092);
        List<PartitionInfo> partitions = new ArrayList<>();
        for (int p = 0; p < CHECKPOINT_PARTITIONS; p++) {
            partitions.add(new PartitionInfo(TOPICS.checkpoints(), p, broker, new Node[]{broker},
                    new Node[]{broker}));
        }
        Cluster cluster = new Cluster("mock", List.of(broker), partitions, Set.of(), Set.of());
        kafka = new MockProducer<>(cluster, false, null, new ByteArraySerializer(), new ByteArraySerializer()) {
            @Override
            public synchronized Future<RecordMetadata> send(ProducerRecord<byte[], byte[]> record,
                                                            Callback callback) {
                Future<RecordMetadata> result = super.send(record, callback);
                handedOver.tell(record);
                return result;
            }
        };
        ProducerSettings settings = ProducerSettings.defaults("mock:9092", RUN);
        producer = new ServiceProducer(settings, kafka);
        checkpoints = new CheckpointPublisher(producer, TOPICS.checkpoints(), CHUNK_BYTES, settings.maxRecordBytes());
        publisher = kit.spawn(Publisher.create(new Publisher.Sinks(ProtoPublisher.metrics(producer, TOPICS),
                ProtoPublisher.events(producer, TOPICS), ProtoPublisher.deadLetters(producer, TOPICS), checkpoints)));
    }

    @AfterEach
    void stopPublisher() {
        kit.stop(publisher);
        checkpoints.close();
        producer.close();
    }

    @Test
    void publishesEachMessageToItsTopicKeyedByRunAndAnswersAFlushOnceKafkaAcknowledgedAll() throws Exception {
        Metrics metrics = Metrics.newBuilder().setRunId(RUN).setStep(3).setLoss(1.5).build();
        RunEvent event = status();
        DeadLetter deadLetter = DeadLetter.newBuilder().setRunId(RUN).setReason("not_json")
                .setRaw(ByteString.copyFromUtf8("{not json")).build();
        publisher.tell(new Publisher.PublishMetrics(metrics));
        publisher.tell(new Publisher.PublishEvent(event));
        publisher.tell(new Publisher.PublishDeadLetter(deadLetter));

        assertEquals(metrics, Metrics.parseFrom(expectRecord(TOPICS.metrics(), RUN).value()));
        assertEquals(event, RunEvent.parseFrom(expectRecord(TOPICS.events(), RUN).value()));
        assertEquals(deadLetter, DeadLetter.parseFrom(expectRecord(TOPICS.deadLetters(), RUN).value()));

        TestProbe<Publisher.Flushed> flushed = kit.createTestProbe();
        publisher.tell(new Publisher.Flush(flushed.getRef()));
        for (int acknowledged = 0; acknowledged < 3; acknowledged++) {
            flushed.expectNoMessage();
            assertTrue(kafka.completeNext());
        }
        flushed.expectMessage(new Publisher.Flushed());
        sent.expectNoMessage();
    }

    @Test
    void aRecordKafkaGivesUpOnIsLoggedAndTheFlushIsAnsweredAllTheSame() {
        publisher.tell(new Publisher.PublishEvent(status()));
        expectRecord(TOPICS.events(), RUN);
        TestProbe<Publisher.Flushed> flushed = kit.createTestProbe();
        publisher.tell(new Publisher.Flush(flushed.getRef()));
        flushed.expectNoMessage();

        LoggingTestKit.warn("could not publish an event: " + TimeoutException.class.getName()).expect(kit.system(),
                () -> kafka.errorNext(new TimeoutException("delivery.timeout.ms passed")));
        flushed.expectMessage(new Publisher.Flushed());
    }

    @Test
    void publishesACheckpointAsItsChunksThenItsManifestAndTheFlushWaitsForTheManifest(@TempDir Path dir)
            throws IOException {
        byte[] delta = new byte[2 * CHUNK_BYTES + 100];
        for (int i = 0; i < delta.length; i++) {
            delta[i] = (byte) i;
        }
        byte[] state = "optimizer state".getBytes(StandardCharsets.UTF_8);
        Path deltaFile = Files.write(dir.resolve("delta"), delta);
        Path stateFile = Files.write(dir.resolve("state"), state);
        CheckpointManifest header = CheckpointManifest.newBuilder().setRunId(RUN).setCheckpointId("step-000004")
                .setStep(4).setMethod("spiel-ag").build();
        publisher.tell(new Publisher.PublishCheckpoint(header, List.of(new CheckpointPart("delta", deltaFile),
                new CheckpointPart("state", stateFile))));
        TestProbe<Publisher.Flushed> flushed = kit.createTestProbe();
        publisher.tell(new Publisher.Flush(flushed.getRef()));

        // the payload, both files back to back, in chunks of at most CHUNK_BYTES: 2 full ones and the rest
        int runPartition = ServiceProducer.partitionOf(RUN, CHECKPOINT_PARTITIONS);
        ByteString payload = ByteString.copyFrom(delta).concat(ByteString.copyFrom(state));
        ByteString chunked = ByteString.EMPTY;
        for (int index = 0; index < 3; index++) {
            ProducerRecord<byte[], byte[]> record = expectRecord(TOPICS.checkpoints(),
                    RUN + "/step-000004/" + index);
            assertEquals(runPartition, record.partition());
            CheckpointRecord chunk = CheckpointRecord.parseFrom(record.value());
            assertEquals(index, chunk.getChunk().getIndex());
            chunked = chunked.concat(chunk.getChunk().getData());
        }
        assertEquals(payload, chunked);
        // the manifest goes out once the chunks are acknowledged
        sent.expectNoMessage();
        for (int index = 0; index < 3; index++) {
            assertTrue(kafka.completeNext());
        }
        ProducerRecord<byte[], byte[]> record = expectRecord(TOPICS.checkpoints(), RUN);
        assertEquals(runPartition, record.partition());
        CheckpointManifest manifest = CheckpointRecord.parseFrom(record.value()).getManifest();
        assertEquals("step-000004", manifest.getCheckpointId());
        assertEquals(4, manifest.getStep());
        assertEquals(3, manifest.getChunkCount());
        assertEquals(payload.size(), manifest.getTotalBytes());
        assertEquals(List.of("delta", "state"), manifest.getPartsList().stream().map(PayloadPart::getName).toList());

        flushed.expectNoMessage();
        assertTrue(kafka.completeNext());
        flushed.expectMessage(new Publisher.Flushed());
    }

    @Test
    void aCheckpointThatCannotBeReadIsLoggedAndThePublisherGoesOn(@TempDir Path dir) {
        CheckpointManifest header = CheckpointManifest.newBuilder().setRunId(RUN).setCheckpointId("step-000009")
                .setStep(9).setMethod("spiel-ag").build();
        LoggingTestKit.warn("could not publish checkpoint step-000009").expect(kit.system(),
                () -> {
                    publisher.tell(new Publisher.PublishCheckpoint(header,
                            List.of(new CheckpointPart("delta", dir.resolve("gone")))));
                    return null;
                });

        Metrics metrics = Metrics.newBuilder().setRunId(RUN).setStep(10).build();
        publisher.tell(new Publisher.PublishMetrics(metrics));
        expectRecord(TOPICS.metrics(), RUN);
        TestProbe<Publisher.Flushed> flushed = kit.createTestProbe();
        publisher.tell(new Publisher.Flush(flushed.getRef()));
        assertTrue(kafka.completeNext());
        flushed.expectMessage(new Publisher.Flushed());
    }

    /** The next record handed to Kafka: on {@code topic}, under {@code key}. */
    private ProducerRecord<byte[], byte[]> expectRecord(String topic, String key) {
        ProducerRecord<byte[], byte[]> record = sent.receiveMessage();
        assertEquals(topic, record.topic());
        assertArrayEquals(key.getBytes(StandardCharsets.UTF_8), record.key(), () -> "key "
                + new String(record.key(), StandardCharsets.UTF_8));
        return record;
    }

    private static RunEvent status() {
        return RunEvent.newBuilder().setRunId(RUN).setStatus(RunStatus.newBuilder()
                .setState(RunStatus.State.STARTED).setMessage("new run")).build();
    }
}
