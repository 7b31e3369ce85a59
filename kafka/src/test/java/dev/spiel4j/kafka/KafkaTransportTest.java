package dev.spiel4j.kafka;

import org.junit.jupiter.api.Tag;
import static dev.spiel4j.kafka.KafkaTestSupport.header;
import static dev.spiel4j.kafka.KafkaTestSupport.randomFile;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.spiel4j.proto.v1.AgeBucket;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.proto.v1.FileLocation;
import dev.spiel4j.proto.v1.ModuleSelection;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.SelectionEvent;
import dev.spiel4j.proto.v1.SourceLocation;
import dev.spiel4j.proto.v1.CheckpointChunk;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.CheckpointRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Publishers and the checkpoint puller against a real embedded broker: chunking, checksums, latest wins,
 * refusal of bad data, telemetry keyed by run.
 */
@Tag("kafka")
class KafkaTransportTest {

    private static final int CHUNK = 4096;
    private static EmbeddedKafka kafka;
    private static Topics topics;
    private static ServiceProducer producer;
    private static CheckpointPublisher publisher;
    private static CheckpointPuller puller;

    @TempDir
    Path dir;

    @BeforeAll
    static void startBroker() {
        kafka = EmbeddedKafka.start();
        topics = Topics.withPrefix("test.");
        ProducerSettings settings = ProducerSettings.defaults(kafka.bootstrapServers(), "checkpoint-test");
        TopicAdmin.ensureTopics(kafka.bootstrapServers(), topics, 3, (short) 1, settings.maxRecordBytes());
        producer = new ServiceProducer(settings);
        publisher = new CheckpointPublisher(producer, topics.checkpoints(), CHUNK, settings.maxRecordBytes());
        puller = new CheckpointPuller(kafka.bootstrapServers(), topics.checkpoints(), Duration.ofSeconds(20));
    }

    @AfterAll
    static void stopBroker() {
        publisher.close();
        producer.close();
        kafka.close();
    }

    /** A run's records read back from its partition, in order, other runs' left out (what a restarted run reads). */
    @Test
    void runRecordsAreTheRunsValuesInOrder() throws Exception {
        ProtoPublisher<Metrics> metrics = ProtoPublisher.metrics(producer, topics);
        for (String run : List.of("run-a", "run-b", "run-a", "run-a")) {
            metrics.publish(Metrics.newBuilder().setRunId(run).setStep(7).build()).get(30, TimeUnit.SECONDS);
        }
        List<byte[]> values = RunRecords.values(kafka.bootstrapServers(), topics.metrics(), "run-a",
                Duration.ofSeconds(20));
        assertEquals(3, values.size());
        for (byte[] v : values) {
            assertEquals("run-a", Metrics.parseFrom(v).getRunId());
        }
        assertEquals(List.of(), RunRecords.values(kafka.bootstrapServers(), topics.metrics(), "run-c",
                Duration.ofSeconds(20)));
    }

    @Test
    void multiChunkCheckpointComesBackByteIdentical() throws Exception {
        // 10,001 + 7,000 bytes: five chunks, the first part ends inside chunk 2, the last chunk is short.
        Path delta = randomFile(dir, "delta.sft", 10_001, 1);
        Path state = randomFile(dir, "state.bin", 7_000, 2);
        CheckpointManifest published = publisher.publish(header("run-roundtrip", "step-10", 10),
                List.of(new CheckpointPart("delta.sft", delta), new CheckpointPart("state.bin", state)))
                .get(30, TimeUnit.SECONDS);
        assertEquals(5, published.getChunkCount());
        assertEquals(17_001, published.getTotalBytes());
        byte[] payload = concat(Files.readAllBytes(delta), Files.readAllBytes(state));
        assertEquals(ByteString.copyFrom(MessageDigest.getInstance("SHA-256").digest(payload)),
                published.getSha256());

        Path out = dir.resolve("pulled");
        PulledCheckpoint pulled = puller.pullLatest("run-roundtrip", out).orElseThrow();
        assertEquals(published, pulled.manifest());
        assertEquals(17, pulled.manifest().getDataPosition().getFile().getNextRecord());
        assertArrayEquals(Files.readAllBytes(delta), Files.readAllBytes(pulled.file("delta.sft")));
        assertArrayEquals(Files.readAllBytes(state), Files.readAllBytes(pulled.file("state.bin")));
        assertEquals(Set.of("delta.sft", "state.bin"), fileNames(out));
    }

    @Test
    void pullsTheLatestCheckpointOfTheRunAndTombstonesTheOlderOne() throws Exception {
        Path first = randomFile(dir, "first", 9_000, 3);
        Path other = randomFile(dir, "other", 5_000, 4);
        Path second = randomFile(dir, "second", 6_000, 5);
        publisher.publish(header("run-latest", "step-1", 1), List.of(new CheckpointPart("delta.sft", first)));
        publisher.publish(header("run-other", "step-1", 1), List.of(new CheckpointPart("delta.sft", other)));
        publisher.publish(header("run-latest", "step-2", 2), List.of(new CheckpointPart("delta.sft", second)))
                .get(30, TimeUnit.SECONDS);

        PulledCheckpoint pulled = puller.pullLatest("run-latest", dir.resolve("out")).orElseThrow();
        assertEquals("step-2", pulled.manifest().getCheckpointId());
        assertArrayEquals(Files.readAllBytes(second), Files.readAllBytes(pulled.file("delta.sft")));
        assertArrayEquals(Files.readAllBytes(other),
                Files.readAllBytes(puller.pullLatest("run-other", dir.resolve("other-out")).orElseThrow()
                        .file("delta.sft")));
        assertTrue(puller.pullLatest("run-never-published", dir.resolve("none")).isEmpty());

        // step-1's three chunks were deleted with tombstones once step-2's manifest was acknowledged.
        Set<String> tombstoned = awaitTombstones(3);
        assertEquals(Set.of("run-latest/step-1/0", "run-latest/step-1/1", "run-latest/step-1/2"), tombstoned);
    }

    @Test
    void corruptChunkIsRefusedAndLeavesNoFiles() throws Exception {
        Path delta = randomFile(dir, "delta.sft", 3 * CHUNK, 6);
        CheckpointManifest published = publisher.publish(header("run-corrupt", "step-5", 5),
                List.of(new CheckpointPart("delta.sft", delta))).get(30, TimeUnit.SECONDS);

        // A later copy of chunk 1 with one flipped byte but the original checksum, as bit rot would leave it.
        byte[] data = Files.readAllBytes(delta);
        byte[] bad = java.util.Arrays.copyOfRange(data, CHUNK, 2 * CHUNK);
        bad[100] ^= 1;
        CheckpointChunk forged = CheckpointChunk.newBuilder().setRunId("run-corrupt").setCheckpointId("step-5")
                .setIndex(1).setData(ByteString.copyFrom(bad)).setSha256(published.getChunkSha256(1)).build();
        sendRaw("run-corrupt/step-5/1", CheckpointRecord.newBuilder().setChunk(forged).build().toByteArray());

        Path out = dir.resolve("corrupt-out");
        CheckpointIntegrityException e = assertThrows(CheckpointIntegrityException.class,
                () -> puller.pullLatest("run-corrupt", out));
        assertTrue(e.getMessage().contains("chunk 1 of checkpoint 'step-5' of run 'run-corrupt'")
                && e.getMessage().contains("corrupt"), e.getMessage());
        assertEquals(Set.of(), fileNames(out));
    }

    @Test
    void incompleteCheckpointIsRefused() throws Exception {
        Path delta = randomFile(dir, "delta.sft", 2 * CHUNK + 1, 7);
        publisher.publish(header("run-incomplete", "step-3", 3), List.of(new CheckpointPart("delta.sft", delta)))
                .get(30, TimeUnit.SECONDS);
        sendRaw("run-incomplete/step-3/2", null); // chunk 2 deleted

        CheckpointIntegrityException e = assertThrows(CheckpointIntegrityException.class,
                () -> puller.pullLatest("run-incomplete", dir.resolve("incomplete-out")));
        assertTrue(e.getMessage().contains("incomplete: chunk 2 of 3 is missing"), e.getMessage());
    }

    @Test
    void badInputIsRefusedBeforePublishing() {
        Path missing = dir.resolve("missing.sft");
        assertThrows(IllegalArgumentException.class, () -> publisher.publish(header("run-x", "c", 1),
                List.of(new CheckpointPart("delta.sft", missing))));
        assertThrows(IllegalArgumentException.class, () -> publisher.publish(header("run/x", "c", 1),
                List.of()));
        assertThrows(IllegalArgumentException.class, () -> new CheckpointPart("../escape", missing));
    }

    @Test
    void telemetryGoesToItsTopicKeyedByRun() throws Exception {
        RunEvent event = RunEvent.newBuilder().setRunId("run-telemetry")
                .setSelection(SelectionEvent.newBuilder().setStep(20).setFraction(1.0)
                        .addModules(ModuleSelection.newBuilder().setModule("model.layers.0.self_attn.q_proj")
                                .setDropped(7).setGrown(7).setActive(40))
                        .addAgeHistogram(AgeBucket.newBuilder().setMinAge(0).setMaxAge(10).setCount(40)))
                .build();
        DeadLetter letter = DeadLetter.newBuilder().setRunId("run-telemetry").setReason("malformed_json")
                .setSource(SourceLocation.newBuilder().setFile(FileLocation.newBuilder().setPath("d.jsonl")
                        .setLine(3)))
                .setRaw(ByteString.copyFromUtf8("{oops")).build();
        ProtoPublisher.events(producer, topics).publish(event).get(30, TimeUnit.SECONDS);
        ProtoPublisher.deadLetters(producer, topics).publish(letter).get(30, TimeUnit.SECONDS);
        assertThrows(IllegalArgumentException.class,
                () -> ProtoPublisher.events(producer, topics).publish(RunEvent.getDefaultInstance()));

        var events = KafkaTestSupport.readAll(kafka.bootstrapServers(), topics.events());
        assertEquals(1, events.size());
        assertEquals("run-telemetry", new String(events.get(0).key(), StandardCharsets.UTF_8));
        assertEquals(event, RunEvent.parseFrom(events.get(0).value()));
        var letters = KafkaTestSupport.readAll(kafka.bootstrapServers(), topics.deadLetters());
        assertEquals(List.of(letter), letters.stream().map(r -> {
            try {
                return DeadLetter.parseFrom(r.value());
            } catch (InvalidProtocolBufferException e) {
                throw new AssertionError(e);
            }
        }).toList());
    }

    @Test
    void aRecordTheTopicRefusesFailsAtOnceWithoutStallingTheOthers() throws Exception {
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", kafka.bootstrapServers()))) {
            admin.createTopics(List.of(new NewTopic("test.small", 1, (short) 1)
                    .configs(Map.of("max.message.bytes", "2048")))).all().get(30, TimeUnit.SECONDS);
        }
        var tooLarge = producer.send("test.small", null, new byte[4096]);
        var fine = producer.send("test.small", null, new byte[100]);
        ExecutionException e = assertThrows(ExecutionException.class, () -> tooLarge.get(30, TimeUnit.SECONDS));
        assertTrue(e.getCause() instanceof RecordTooLargeException, e.getCause().toString());
        assertEquals(0, fine.get(30, TimeUnit.SECONDS).offset());
        assertTrue(producer.status().available());
    }

    private static Set<String> awaitTombstones(int expected) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        Set<String> keys;
        do {
            keys = KafkaTestSupport.readAll(kafka.bootstrapServers(), topics.checkpoints()).stream()
                    .filter(r -> r.value() == null)
                    .map(r -> new String(r.key(), StandardCharsets.UTF_8))
                    .filter(k -> k.startsWith("run-latest/"))
                    .collect(Collectors.toSet());
            if (keys.size() >= expected) {
                return keys;
            }
            Thread.sleep(100);
        } while (System.nanoTime() < deadline);
        return keys;
    }

    private static void sendRaw(String key, byte[] value) throws Exception {
        String run = key.substring(0, key.indexOf('/'));
        try (KafkaProducer<byte[], byte[]> raw = new KafkaProducer<>(
                Map.of("bootstrap.servers", kafka.bootstrapServers()),
                new ByteArraySerializer(), new ByteArraySerializer())) {
            int partition = ServiceProducer.partitionOf(run, raw.partitionsFor(topics.checkpoints()).size());
            raw.send(new ProducerRecord<>(topics.checkpoints(), partition,
                    key.getBytes(StandardCharsets.UTF_8), value)).get();
        }
    }

    private static Set<String> fileNames(Path dir) throws Exception {
        if (!Files.exists(dir)) {
            return Set.of();
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
