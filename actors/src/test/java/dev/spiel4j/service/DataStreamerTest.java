package dev.spiel4j.service;

import dev.spiel4j.proto.v1.DeadLetter;
import org.apache.pekko.actor.testkit.typed.annotations.JUnit5TestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.JUnit5TestKitBuilder;
import org.apache.pekko.actor.testkit.typed.javadsl.TestKitJUnit5Extension;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * The data streamer alone, the trainer and the publisher played by probes: batches come in file order, a reset to
 * a batch's resume position serves exactly the batches that followed it (nothing lost, nothing repeated), and each
 * unusable record goes to the publisher as a dead letter with its raw text, once: not again when a reset replays it,
 * nor in the next pass over the file.
 */
@ExtendWith(TestKitJUnit5Extension.class)
class DataStreamerTest {
    @JUnit5TestKit
    ActorTestKit kit = new JUnit5TestKitBuilder().build();

    @TempDir
    Path dir;

    @Test
    void servesInFileOrderResumesAtAServedPositionAndDeadLettersBrokenRecords() throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            lines.add("{\"prompt\": \"say " + i + "\", \"response\": \"" + i + " it is\"}");
            if (i == 2) {
                lines.add("{not json");
            }
            if (i == 6) {
                lines.add("[1, 2");
            }
        }
        Path file = dir.resolve("train.jsonl");
        Files.write(file, lines);
        RunPlan plan = TestPlans.stories260K(dir, "streamer-test", "data.train=\"" + file + "\"", "batch.size=2",
                "eval.holdout-examples=0", "eval.interval=0", "schedule.steps=4", "data.shuffle=false");
        TestProbe<Publisher.Command> publisher = kit.createTestProbe();
        TestProbe<DataStreamer.Reply> trainer = kit.createTestProbe();
        ActorRef<DataStreamer.Command> streamer = kit.spawn(DataStreamer.create(plan, "", publisher.getRef(), List.of()));

        streamer.tell(new DataStreamer.ResetTo(DataStreamer.start(plan.settings())));
        List<DataStreamer.Served> served = new ArrayList<>();
        for (int b = 0; b < 4; b++) {
            streamer.tell(new DataStreamer.NextBatch(trainer.getRef()));
            served.add(trainer.expectMessageClass(DataStreamer.Served.class));
        }
        for (int b = 0; b < 4; b++) {
            assertEquals(2, served.get(b).batch().size(), "batch " + b);
        }
        Set<String> raw = new java.util.TreeSet<>();
        for (int i = 0; i < 2; i++) {
            DeadLetter d = publisher.expectMessageClass(Publisher.PublishDeadLetter.class).deadLetter();
            raw.add(d.getRaw().toStringUtf8());
            assertEquals("streamer-test", d.getRunId());
        }
        assertEquals(Set.of("{not json", "[1, 2"), raw);

        // after a reset to the first batch's resume position, the second and third batches come again, unchanged
        streamer.tell(new DataStreamer.ResetTo(served.get(0).resume()));
        for (int b = 1; b < 4; b++) {
            streamer.tell(new DataStreamer.NextBatch(trainer.getRef()));
            DataStreamer.Served again = trainer.expectMessageClass(DataStreamer.Served.class);
            assertEquals(served.get(b).batch().exampleIds(), again.batch().exampleIds(), "batch " + b);
            assertEquals(served.get(b).resume(), again.resume(), "resume position of batch " + b);
        }
        // the replayed records were dead-lettered already; so were those of the next pass over the file
        for (int b = 0; b < 8; b++) {
            streamer.tell(new DataStreamer.NextBatch(trainer.getRef()));
            trainer.expectMessageClass(DataStreamer.Served.class);
        }
        publisher.expectNoMessage();
        TestProbe<Long> count = kit.createTestProbe();
        streamer.tell(new DataStreamer.GetDeadLetters(count.getRef()));
        assertEquals(2L, count.receiveMessage());
        // file order: the records' lines, the broken lines 4 and 9 left out
        List<Integer> linesServed = served.stream().flatMap(s -> s.batch().exampleIds().stream())
                .map(id -> Integer.parseInt(id.substring(id.lastIndexOf(':') + 1))).toList();
        assertEquals(List.of(1, 2, 3, 5, 6, 7, 8, 10), linesServed);
    }

    /**
     * {@code data.shuffle}: each epoch serves every record once in its own order, a pure function of the run's seed
     * and the epoch, so a reset to a served position serves the same batches again; dead letters stay once per run.
     */
    @Test
    void shuffledEpochsServeEveryRecordOnceInSeededOrdersAndResumeExactly() throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            lines.add("{\"prompt\": \"say " + i + "\", \"response\": \"" + i + " it is\"}");
        }
        lines.add(5, "{not json");
        Path file = Files.write(dir.resolve("train.jsonl"), lines);
        List<Integer> valid = new ArrayList<>(java.util.stream.IntStream.rangeClosed(1, 13).boxed().toList());
        valid.remove(Integer.valueOf(6));
        String[] settings = {"data.train=\"" + file + "\"", "batch.size=2", "eval.holdout-examples=0",
                "eval.interval=0", "schedule.steps=12", "data.shuffle=true", "run.seed=7"};
        RunPlan plan = TestPlans.stories260K(dir, "shuffle-test", settings);
        TestProbe<Publisher.Command> publisher = kit.createTestProbe();
        List<DataStreamer.Served> served = serve(plan, publisher, DataStreamer.start(plan.settings()), 12);
        List<Integer> epoch0 = lines(served.subList(0, 6));
        List<Integer> epoch1 = lines(served.subList(6, 12));
        assertEquals(valid, epoch0.stream().sorted().toList(), "epoch 0 serves every record once");
        assertEquals(valid, epoch1.stream().sorted().toList(), "epoch 1 serves every record once");
        assertNotEquals(valid, epoch0, "not in file order");
        assertNotEquals(epoch0, epoch1, "each epoch has its own order");
        assertEquals("train.jsonl:6", publisher.expectMessageClass(Publisher.PublishDeadLetter.class).deadLetter()
                .getSourceId());
        publisher.expectNoMessage();

        // the order is the seed's: another process with the same settings serves the same batches, from any
        // served position on; another seed serves another order
        List<DataStreamer.Served> resumed = serve(plan, kit.createTestProbe(), served.get(3).resume(), 8);
        for (int b = 0; b < 8; b++) {
            assertEquals(served.get(4 + b).batch().exampleIds(), resumed.get(b).batch().exampleIds(), "batch " + b);
            assertEquals(served.get(4 + b).resume(), resumed.get(b).resume(), "resume position of batch " + b);
        }
        settings[6] = "run.seed=8";
        RunPlan otherSeed = TestPlans.stories260K(dir, "shuffle-test-8", settings);
        assertNotEquals(epoch0, lines(serve(otherSeed, kit.createTestProbe(), DataStreamer.start(otherSeed.settings()),
                6)));
    }

    private List<DataStreamer.Served> serve(RunPlan plan, TestProbe<Publisher.Command> publisher,
                                            StreamPosition from, int batches) {
        TestProbe<DataStreamer.Reply> trainer = kit.createTestProbe();
        ActorRef<DataStreamer.Command> streamer = kit.spawn(DataStreamer.create(plan, "", publisher.getRef(),
                List.of()));
        streamer.tell(new DataStreamer.ResetTo(from));
        List<DataStreamer.Served> served = new ArrayList<>();
        for (int b = 0; b < batches; b++) {
            streamer.tell(new DataStreamer.NextBatch(trainer.getRef()));
            served.add(trainer.expectMessageClass(DataStreamer.Served.class));
        }
        return served;
    }

    private static List<Integer> lines(List<DataStreamer.Served> served) {
        return served.stream().flatMap(s -> s.batch().exampleIds().stream())
                .map(id -> Integer.parseInt(id.substring(id.lastIndexOf(':') + 1))).toList();
    }

    /** A restarted run starts from its earlier dead letters: those records are not dead-lettered again. */
    @Test
    void aRestartedRunDoesNotDeadLetterWhatItsEarlierProcessDid() throws IOException {
        Path file = dir.resolve("train.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            lines.add("{\"prompt\": \"say " + i + "\", \"response\": \"" + i + " it is\"}");
        }
        lines.add(1, "{not json");
        lines.add(4, "[1, 2");
        Files.write(file, lines);
        RunPlan plan = TestPlans.stories260K(dir, "restart-test", "data.train=\"" + file + "\"", "batch.size=2",
                "eval.holdout-examples=0", "eval.interval=0", "schedule.steps=3", "data.shuffle=false");
        TestProbe<Publisher.Command> publisher = kit.createTestProbe();
        List<DeadLetter> first = new ArrayList<>();
        serveThreeBatches(plan, publisher, List.of());
        for (int i = 0; i < 2; i++) {
            first.add(publisher.expectMessageClass(Publisher.PublishDeadLetter.class).deadLetter());
        }
        assertEquals(List.of("train.jsonl:2", "train.jsonl:5"), first.stream().map(DeadLetter::getSourceId).toList());

        // the earlier process had published the first one before it died
        TestProbe<Publisher.Command> restarted = kit.createTestProbe();
        ActorRef<DataStreamer.Command> streamer = serveThreeBatches(plan, restarted, List.of(first.get(0)));
        assertEquals(first.get(1).getSourceId(), restarted.expectMessageClass(Publisher.PublishDeadLetter.class)
                .deadLetter().getSourceId());
        restarted.expectNoMessage();
        TestProbe<Long> count = kit.createTestProbe();
        streamer.tell(new DataStreamer.GetDeadLetters(count.getRef()));
        assertEquals(2L, count.receiveMessage(), "the run's dead letters, the earlier process's included");
    }

    private ActorRef<DataStreamer.Command> serveThreeBatches(RunPlan plan, TestProbe<Publisher.Command> publisher,
                                                             List<DeadLetter> earlier) {
        TestProbe<DataStreamer.Reply> trainer = kit.createTestProbe();
        ActorRef<DataStreamer.Command> streamer = kit.spawn(DataStreamer.create(plan, "", publisher.getRef(), earlier));
        streamer.tell(new DataStreamer.ResetTo(DataStreamer.start(plan.settings())));
        for (int b = 0; b < 3; b++) {
            streamer.tell(new DataStreamer.NextBatch(trainer.getRef()));
            trainer.expectMessageClass(DataStreamer.Served.class);
        }
        return streamer;
    }
}
