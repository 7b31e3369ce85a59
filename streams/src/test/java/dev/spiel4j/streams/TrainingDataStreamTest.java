package dev.spiel4j.streams;

import dev.spiel4j.data.Batch;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.ByteTokenizer;
import dev.spiel4j.data.ExampleEncoder;
import dev.spiel4j.data.ExampleParser;
import dev.spiel4j.data.ReadPosition;
import dev.spiel4j.data.Rejected;
import dev.spiel4j.data.TokenizedData;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.io.SharedAssets;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.testkit.TestSubscriber;
import org.apache.pekko.stream.testkit.javadsl.TestSink;
import org.apache.pekko.testkit.javadsl.TestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingDataStreamTest {
    private static ActorSystem system;

    @BeforeAll
    static void start() {
        system = ActorSystem.create("training-data-stream-test");
    }

    @AfterAll
    static void stop() {
        TestKit.shutdownActorSystem(system);
    }

    private static final ExampleEncoder ENCODER = new ExampleEncoder(ByteTokenizer.INSTANCE, 1024, ExampleEncoder.Overflow.REJECT);

    private static <P> List<BatchWithPosition<P>> runAll(Source<BatchWithPosition<P>, ?> source) throws Exception {
        return source.runWith(Sink.seq(), system).toCompletableFuture().get(60, TimeUnit.SECONDS);
    }

    private static List<String> ids(List<? extends BatchWithPosition<?>> batches) {
        return batches.stream().flatMap(b -> b.batch().exampleIds().stream()).toList();
    }

    @Test
    void batchesFollowFileOrderAndEqualThePurePath() throws Exception {
        Path file = SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl");
        ConcurrentLinkedQueue<Rejected> dead = new ConcurrentLinkedQueue<>();
        List<BatchWithPosition<ReadPosition>> batches = runAll(TrainingDataStream.fromFile(file,
                DataPosition.at(ReadPosition.START), ENCODER, new BatchShape(8, 0), Sink.foreach(dead::add)));
        TokenizedData pure = TokenizedData.load(file, ENCODER);
        assertEquals(pure.examples().stream().map(TokenizedExample::id).toList(), ids(batches));
        assertEquals(pure.rejected(), List.copyOf(dead));
        assertTrue(dead.size() > 0, "some dolly records exceed 1024 byte tokens");
        assertEquals(1000, ids(batches).size() + dead.size(), "every record is a batch row or a dead letter");
        for (int b = 0; b < batches.size(); b++) {
            List<TokenizedExample> rows = pure.examples().subList(b * 8, Math.min(pure.examples().size(), b * 8 + 8));
            Batch expected = Batches.pad(rows, 0);
            Batch actual = batches.get(b).batch();
            assertArrayEquals(expected.inputs(), actual.inputs());
            assertArrayEquals(expected.targets(), actual.targets());
            assertArrayEquals(expected.lossMask(), actual.lossMask());
        }
        assertEquals(Files.size(file), batches.get(batches.size() - 1).resume().record().byteOffset());
    }

    @Test
    void recordsAreReadOnlyAsBatchesAreRequested() {
        Path file = SharedAssets.file("data/gsm8k_train.jsonl");
        AtomicInteger read = new AtomicInteger();
        Source<BatchWithPosition<ReadPosition>, ?> source = TrainingDataStream.batches(
                ExampleSources.file(file, ReadPosition.START).map(r -> {
                    read.incrementAndGet();
                    return r;
                }), ExampleParser.JSON, ENCODER, new BatchShape(4, 0), DataPosition.at(ReadPosition.START), Sink.ignore());
        TestSubscriber.Probe<BatchWithPosition<ReadPosition>> probe = source.runWith(TestSink.create(system), system);
        List<String> seen = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            probe.request(1);
            seen.addAll(probe.expectNext(Duration.ofSeconds(10)).batch().exampleIds());
            probe.expectNoMessage(Duration.ofMillis(200));
            // 4 records per batch plus the buffers between asynchronous stages (16 at the file source's boundary)
            assertTrue(read.get() <= 4 * (i + 1) + 32, "read " + read.get() + " records for " + (i + 1) + " batches");
        }
        assertEquals(List.of("gsm8k_train.jsonl:1", "gsm8k_train.jsonl:2"), seen.subList(0, 2));
        assertEquals(20, seen.size());
        probe.cancel();
    }

    @Test
    void badRecordsGoToDeadLettersWhileGoodOnesComeOut(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("mixed.jsonl");
        String longResponse = "x".repeat(2000);
        try (var out = Files.newOutputStream(file)) {
            out.write(String.join("\n",
                    "{\"prompt\":\"p1\",\"response\":\"r1\"}",
                    "{\"prompt\":\"p2\",\"response\":",
                    "{\"instruction\":\"i3\",\"output\":\"\"}",
                    "{\"question\":\"q4\",\"answer\":\"a4\"}",
                    "{\"prompt\":\"p5\",\"response\":\"" + longResponse + "\"}",
                    "{\"question\":\"q6\"}",
                    "").getBytes(StandardCharsets.UTF_8));
            out.write(new byte[]{'{', '"', 't', 'e', 'x', 't', '"', ':', '"', (byte) 0xC0, '"', '}', '\n'});
            out.write("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]}\n"
                    .getBytes(StandardCharsets.UTF_8));
        }
        ConcurrentLinkedQueue<Rejected> dead = new ConcurrentLinkedQueue<>();
        List<BatchWithPosition<ReadPosition>> batches = runAll(TrainingDataStream.fromFile(file,
                DataPosition.at(ReadPosition.START), ENCODER, new BatchShape(2, 0), Sink.foreach(dead::add)));
        assertEquals(List.of("mixed.jsonl:1", "mixed.jsonl:4", "mixed.jsonl:8"), ids(batches));
        List<String> deadLines = dead.stream().map(Rejected::sourcePosition).toList();
        assertEquals(List.of("mixed.jsonl:2", "mixed.jsonl:3", "mixed.jsonl:5", "mixed.jsonl:6", "mixed.jsonl:7"), deadLines);
        List<String> reasons = dead.stream().map(Rejected::reason).toList();
        assertTrue(reasons.get(0).startsWith("malformed JSON"), reasons.get(0));
        assertEquals("empty response: field 'output' is empty", reasons.get(1));
        assertTrue(reasons.get(2).startsWith("too long: 2004 tokens"), reasons.get(2));
        assertEquals("missing field 'answer'", reasons.get(3));
        assertEquals("invalid UTF-8 at byte 9 of the record", reasons.get(4));
    }

    @Test
    void resumingFromAnyBatchGivesExactlyTheRemainingExamples() throws Exception {
        Path file = SharedAssets.file("data/tinystories_train_head.txt");
        // Small rows so that long paragraphs split into chunks that straddle batches.
        ExampleEncoder split = new ExampleEncoder(ByteTokenizer.INSTANCE, 200, ExampleEncoder.Overflow.SPLIT);
        BatchShape shape = new BatchShape(3, 199);
        List<BatchWithPosition<ReadPosition>> all = runAll(TrainingDataStream.fromFile(file,
                DataPosition.at(ReadPosition.START), split, shape, Sink.ignore()));
        List<String> allIds = ids(all);
        assertTrue(all.stream().anyMatch(b -> b.resume().chunksDone() > 0), "some batch ends inside a record");
        int checked = 0;
        for (int k = 0; k < all.size(); k += all.size() / 9) {
            BatchWithPosition<ReadPosition> cut = all.get(k);
            List<BatchWithPosition<ReadPosition>> rest = runAll(TrainingDataStream.fromFile(file, cut.resume(),
                    split, shape, Sink.ignore()));
            int done = ids(all.subList(0, k + 1)).size();
            assertEquals(allIds.subList(done, allIds.size()), ids(rest), "resume after batch " + k);
            if (!rest.isEmpty()) {
                assertArrayEquals(all.get(k + 1).batch().inputs(), rest.get(0).batch().inputs());
            }
            checked++;
        }
        assertTrue(checked >= 9);
        assertTrue(runAll(TrainingDataStream.fromFile(file, all.get(all.size() - 1).resume(), split, shape,
                Sink.ignore())).isEmpty(), "nothing after the last batch");
    }
}
