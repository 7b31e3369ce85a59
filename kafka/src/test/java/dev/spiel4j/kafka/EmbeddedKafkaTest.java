package dev.spiel4j.kafka;

import org.junit.jupiter.api.Tag;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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

    /**
     * A run taken over from a coordinator whose process still holds the broker's directory: the new broker waits
     * until that process lets go (without the wait Kafka refuses at once: "Failed to acquire lock on file .lock").
     */
    @Test
    void aBrokerWaitsForAnotherProcessToReleaseItsDirectory() throws Exception {
        Path logDir = dir.resolve("kafka");
        EmbeddedKafka.start(logDir, 0).close();
        Path holder = dir.resolve("LockHolder.java");
        Files.writeString(holder, """
                import java.nio.channels.FileChannel;
                import java.nio.file.Path;
                import java.nio.file.StandardOpenOption;
                public class LockHolder {
                    public static void main(String[] args) throws Exception {
                        FileChannel channel = FileChannel.open(Path.of(args[0]), StandardOpenOption.CREATE,
                                StandardOpenOption.WRITE);
                        channel.lock();
                        System.out.println("locked");
                        System.out.flush();
                        Thread.sleep(Long.parseLong(args[1]));
                    }
                }
                """);
        String java = ProcessHandle.current().info().command().orElse("java");
        Process child = new ProcessBuilder(java, holder.toString(), logDir.resolve(".lock").toString(), "3000")
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream()))) {
            assertEquals("locked", out.readLine(), "the other process holds the directory");
            try (EmbeddedKafka kafka = EmbeddedKafka.start(logDir, 0, Duration.ofSeconds(60))) {
                assertTrue(kafka.isRunning());
                assertTrue(child.waitFor(10, TimeUnit.SECONDS), "the broker started once the other process let go");
            }
        } finally {
            child.destroyForcibly();
        }
    }
}
