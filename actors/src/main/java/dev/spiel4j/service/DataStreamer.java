package dev.spiel4j.service;

import dev.spiel4j.config.RunSettings;
import dev.spiel4j.data.Batch;
import dev.spiel4j.data.RawRecord;
import dev.spiel4j.data.ReadPosition;
import dev.spiel4j.data.Rejected;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.streams.ExampleSources;
import dev.spiel4j.streams.KafkaOffsets;
import dev.spiel4j.streams.TrainingDataStream;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.kafka.ConsumerSettings;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.SinkQueueWithCancel;
import org.apache.pekko.stream.javadsl.Source;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Serves training batches on demand from the streams module's {@link TrainingDataStream}: {@link NextBatch}
 * pulls one batch through the graph (backpressure: nothing is read far ahead of the trainer) and answers with
 * the batch and the position right after it, or {@link EndOfData}. {@link ResetTo} re-materialises the stream
 * at a position (a resuming trainer sends the position of its checkpoint first).
 *
 * <p>Sources: the training file ({@code data.source = file}), read pass after pass in file order, without its
 * held-out tail; or the input topic ({@code data.source = kafka}) from explicit partition offsets (never
 * committed to Kafka: the offsets live in the checkpoints). Unusable records go to the dead-letter topic and are
 * counted, each once per run: in the file's first pass, not again when a reset replays steps, and not again after a
 * process restart, which starts from the run's earlier dead letters (read back from the topic).
 */
final class DataStreamer extends AbstractBehavior<DataStreamer.Command> {

    public sealed interface Command {
    }

    /** Asks for the next batch. */
    public record NextBatch(ActorRef<Reply> replyTo) implements Command {
    }

    /** Restarts the data at {@code position}; requests that follow are served from there. */
    public record ResetTo(StreamPosition position) implements Command {
    }

    /** Asks how many records were dead-lettered. */
    public record GetDeadLetters(ActorRef<Long> replyTo) implements Command {
    }

    public sealed interface Reply {
    }

    /** A batch and the position after its last example. */
    public record Served(Batch batch, StreamPosition resume) implements Reply {
    }

    /** The (finite) source has no more examples. */
    public record EndOfData() implements Reply {
    }

    private record Pulled(int generation, Optional<Served> batch, Throwable error) implements Command {
    }

    /** A record the stream refused, read in pass {@code pass} over the file (0 for a topic). */
    private record DeadLettered(Rejected rejected, long pass) implements Command {
    }

    /** @param earlierDeadLetters what the run dead-lettered before this process (a restart), oldest first */
    public static Behavior<Command> create(RunPlan plan, String bootstrapServers, ActorRef<Publisher.Command> publisher,
                                           List<DeadLetter> earlierDeadLetters) {
        return Behaviors.setup(ctx -> new DataStreamer(ctx, plan, bootstrapServers, publisher, earlierDeadLetters));
    }

    private final RunPlan plan;
    private final Telemetry telemetry;
    private final String bootstrapServers;
    private final ActorRef<Publisher.Command> publisher;
    private final Materializer materializer;
    private SinkQueueWithCancel<Served> queue;
    private StreamPosition streamStart;
    private boolean servedSinceStart;
    private int generation;
    private ActorRef<Reply> waiting;
    private long deadLetters;
    /** Source positions of the records dead-lettered so far. */
    private final Set<String> deadLettered = new HashSet<>();

    private DataStreamer(ActorContext<Command> ctx, RunPlan plan, String bootstrapServers,
                         ActorRef<Publisher.Command> publisher, List<DeadLetter> earlierDeadLetters) {
        super(ctx);
        for (DeadLetter d : earlierDeadLetters) {
            deadLettered.add(d.getSourceId());
        }
        deadLetters = earlierDeadLetters.size();
        this.plan = plan;
        this.telemetry = new Telemetry(plan.settings());
        this.bootstrapServers = bootstrapServers;
        this.publisher = publisher;
        // Streams materialised here stop with this actor.
        this.materializer = Materializer.createMaterializer(ctx);
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(ResetTo.class, this::onReset)
                .onMessage(NextBatch.class, this::onNext)
                .onMessage(Pulled.class, this::onPulled)
                .onMessage(DeadLettered.class, this::onDeadLetter)
                .onMessage(GetDeadLetters.class, g -> {
                    g.replyTo().tell(deadLetters);
                    return this;
                })
                .build();
    }

    private Behavior<Command> onReset(ResetTo reset) {
        // A reset comes from a (re)starting trainer, which asks anew: a request of its failed predecessor is dropped.
        waiting = null;
        open(reset.position());
        return this;
    }

    private Behavior<Command> onNext(NextBatch next) {
        if (queue == null) {
            throw new IllegalStateException("NextBatch before ResetTo: the trainer must position the data first");
        }
        waiting = next.replyTo();
        pull();
        return this;
    }

    private Behavior<Command> onPulled(Pulled pulled) {
        if (pulled.generation() != generation || waiting == null) {
            return this; // a pull from before the last ResetTo
        }
        if (pulled.error() != null) {
            throw new IllegalStateException("training data stream failed: " + pulled.error().getMessage(),
                    pulled.error());
        }
        if (pulled.batch().isPresent()) {
            servedSinceStart = true;
            waiting.tell(pulled.batch().get());
            waiting = null;
        } else if (streamStart instanceof StreamPosition.InFile f && servedSinceStart) {
            // End of a pass over the file: the next pass starts at its beginning.
            open(StreamPosition.InFile.start(f.epoch() + 1, f.shuffled()));
            pull();
        } else {
            waiting.tell(new EndOfData());
            waiting = null;
        }
        return this;
    }

    private Behavior<Command> onDeadLetter(DeadLettered d) {
        // Once per record: later passes over the file read every broken record again (those were dead-lettered
        // in the first pass, by this process or the one this run resumed from), and so do the steps replayed after
        // a ResetTo.
        if (d.pass() > 0 || !deadLettered.add(d.rejected().sourcePosition())) {
            return this;
        }
        deadLetters++;
        publisher.tell(new Publisher.PublishDeadLetter(telemetry.deadLetter(d.rejected())));
        return this;
    }

    private void pull() {
        int g = generation;
        getContext().pipeToSelf(queue.pull(), (batch, error) -> new Pulled(g, batch, error));
    }

    private void open(StreamPosition position) {
        if (queue != null) {
            queue.cancel();
        }
        generation++;
        streamStart = position;
        // A stream opened mid-pass may be empty although the file is not; only an empty full pass ends the data.
        servedSinceStart = position instanceof StreamPosition.InFile f && !f.at().equals(
                StreamPosition.InFile.start(f.epoch(), f.shuffled()).at());
        ActorRef<Command> self = getContext().getSelf();
        long pass = position instanceof StreamPosition.InFile f ? f.epoch() : 0;
        Sink<Rejected, ?> dead = Sink.foreach(r -> self.tell(new DeadLettered(r, pass)));
        Source<Served, ?> source;
        if (position instanceof StreamPosition.InFile f) {
            Path train = plan.settings().data().train();
            Source<RawRecord<ReadPosition>, NotUsed> records = f.shuffled()
                    ? ExampleSources.inOrder(train, plan.recordStarts(), plan.recordOrder(f.epoch()), f.at().record()
                    .record())
                    : ExampleSources.file(train, f.at().record()).takeWhile(r -> r.at().record() < plan.trainRecords());
            source = TrainingDataStream.batches(records, plan.decoder(), plan.encoder(), plan.shape(), f.at(), dead)
                    .map(b -> new Served(b.batch(), new StreamPosition.InFile(f.epoch(), b.resume(), f.shuffled())));
        } else {
            StreamPosition.InTopic t = (StreamPosition.InTopic) position;
            ConsumerSettings<byte[], byte[]> consumer = ConsumerSettings.create(getContext().getSystem(),
                    new ByteArrayDeserializer(), new ByteArrayDeserializer()).withBootstrapServers(bootstrapServers);
            source = TrainingDataStream.batches(ExampleSources.kafka(consumer, t.at().record()),
                            new TopicExampleDecoder(), plan.encoder(), plan.shape(), t.at(), dead)
                    .map(b -> new Served(b.batch(), new StreamPosition.InTopic(b.resume())));
        }
        queue = source.runWith(Sink.queue(), materializer);
    }

    /** The position a new run starts from. */
    static StreamPosition start(RunSettings settings) {
        if (settings.data().source() == RunSettings.Source.FILE) {
            return StreamPosition.InFile.start(0, settings.data().shuffle());
        }
        return new StreamPosition.InTopic(dev.spiel4j.streams.DataPosition.at(
                KafkaOffsets.fromStart(settings.kafka().topics().input(), settings.kafka().partitions())));
    }
}
