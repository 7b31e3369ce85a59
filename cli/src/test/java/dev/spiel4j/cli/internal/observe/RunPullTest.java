package dev.spiel4j.cli.internal.observe;

import org.junit.jupiter.api.Tag;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.kafka.CheckpointIntegrityException;
import dev.spiel4j.kafka.CheckpointPart;
import dev.spiel4j.kafka.CheckpointPublisher;
import dev.spiel4j.kafka.EmbeddedKafka;
import dev.spiel4j.kafka.ProducerSettings;
import dev.spiel4j.kafka.ServiceProducer;
import dev.spiel4j.kafka.TopicAdmin;
import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.CheckpointManifest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pulling a run's sparse fine-tuning from the checkpoints topic of an embedded broker. */
@Tag("kafka")
class RunPullTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    private static EmbeddedKafka kafka;
    private static Topics topics;
    private static ServiceProducer producer;
    private static CheckpointPublisher publisher;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        kafka = EmbeddedKafka.start();
        topics = Topics.withPrefix("pull.");
        ProducerSettings settings = ProducerSettings.defaults(kafka.bootstrapServers(), "pull-test");
        TopicAdmin.ensureTopics(kafka.bootstrapServers(), topics, 2, (short) 1, settings.maxRecordBytes());
        producer = new ServiceProducer(settings);
        publisher = new CheckpointPublisher(producer, topics.checkpoints(), 4096, settings.maxRecordBytes());
    }

    @AfterAll
    static void stop() {
        publisher.close();
        producer.close();
        kafka.close();
    }

    private static SparseFineTuning sft(String fingerprint, float scale) {
        long[] indices = new long[2000];
        float[] values = new float[2000];
        for (int i = 0; i < indices.length; i++) {
            indices[i] = 3L * i;
            values[i] = scale * (i % 17 - 8);
        }
        return new SparseFineTuning(fingerprint, "spiel-ag", Map.of("lr", "1e-4"), List.of(
                new DeltaTensor("model.layers.0.self_attn.q_proj", 100, 100, indices, values),
                new DeltaTensor("model.layers.1.mlp.down_proj", 8, 16, new long[]{0, 127}, new float[]{1f, -1f})));
    }

    private void publish(String run, String checkpoint, long step, String fingerprint, Map<String, byte[]> parts)
            throws Exception {
        List<CheckpointPart> files = new java.util.ArrayList<>();
        for (var part : parts.entrySet()) {
            Path file = Files.write(dir.resolve(run + "-" + checkpoint + "-" + part.getKey()), part.getValue());
            files.add(new CheckpointPart(part.getKey(), file));
        }
        publisher.publish(CheckpointManifest.newBuilder().setRunId(run).setCheckpointId(checkpoint).setStep(step)
                .setMethod("spiel-ag").setBaseFingerprint(fingerprint).build(), files).get(30, TimeUnit.SECONDS);
    }

    private byte[] saved(SparseFineTuning sft) throws IOException {
        Path file = dir.resolve("saved-" + System.nanoTime() + ".sft");
        sft.save(file);
        return Files.readAllBytes(file);
    }

    @Test
    void writesTheLatestSparseFineTuningOfTheRun() throws Exception {
        byte[] first = saved(sft("fp-1", 0.01f));
        byte[] latest = saved(sft("fp-1", 0.02f));
        publish("run-a", "step-000010", 10, "fp-1", Map.of(RunPull.DELTA_PART, first, "state.bin", new byte[5000]));
        publish("run-a", "step-000020", 20, "fp-1", Map.of(RunPull.DELTA_PART, latest, "state.bin", new byte[7000]));

        Path out = dir.resolve("pulled/run-a.sft");
        RunPull.Pulled pulled = RunPull.pull(kafka.bootstrapServers(), topics, "run-a", out, TIMEOUT).orElseThrow();
        assertEquals(new RunPull.Pulled("run-a", "step-000020", 20, "spiel-ag", out.toAbsolutePath(), 2002, 2), pulled);
        assertArrayEquals(latest, Files.readAllBytes(out));
        SparseFineTuning loaded = SparseFineTuning.load(out);
        assertEquals(0.02f * 8, loaded.delta("model.layers.0.self_attn.q_proj").orElseThrow().values()[16]);
        try (Stream<Path> left = Files.list(out.getParent())) {
            assertEquals(List.of(out.toAbsolutePath()), left.map(Path::toAbsolutePath).toList(),
                    "the other parts and the staging directory are gone");
        }
    }

    @Test
    void aRunWithoutCheckpointsGivesNothing() throws IOException {
        Path out = dir.resolve("none.sft");
        assertEquals(Optional.empty(), RunPull.pull(kafka.bootstrapServers(), topics, "run-never", out, TIMEOUT));
        assertFalse(Files.exists(out));
    }

    private void assertRefused(String run, String expected) {
        Path out = dir.resolve(run + ".sft");
        var e = assertThrows(CheckpointIntegrityException.class,
                () -> RunPull.pull(kafka.bootstrapServers(), topics, run, out, TIMEOUT));
        assertTrue(e.getMessage().contains("run '" + run + "'") && e.getMessage().contains(expected), e.getMessage());
        assertFalse(Files.exists(out));
    }

    @Test
    void refusesACheckpointWhoseDeltaPartIsNotASparseFineTuning() throws Exception {
        publish("run-junk", "step-1", 1, "fp-1", Map.of(RunPull.DELTA_PART, new byte[]{1, 2, 3, 4, 5, 6, 7, 8, 9}));
        assertRefused("run-junk", "part 'delta.sft' is not a sparse fine-tuning");
    }

    @Test
    void refusesACheckpointWithoutADeltaPart() throws Exception {
        publish("run-state-only", "step-1", 1, "fp-1", Map.of("state.bin", new byte[100]));
        assertRefused("run-state-only", "has no part 'delta.sft', only [state.bin]");
    }

    @Test
    void refusesASparseFineTuningOfAnotherBase() throws Exception {
        publish("run-other-base", "step-1", 1, "fp-manifest", Map.of(RunPull.DELTA_PART, saved(sft("fp-2", 1f))));
        assertRefused("run-other-base", "names base model fp-manifest but the sparse fine-tuning was trained on fp-2");
    }

    @Test
    void refusesAnUnknownTopic() {
        var e = assertThrows(IOException.class, () -> RunPull.pull(kafka.bootstrapServers(),
                Topics.withPrefix("absent."), "run-a", dir.resolve("x.sft"), Duration.ofSeconds(3)));
        assertTrue(e.getMessage().contains("'absent.checkpoints' does not exist"), e.getMessage());
    }
}
