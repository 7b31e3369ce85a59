package dev.spiel4j.service;

import dev.spiel4j.config.RunSettings;
import dev.spiel4j.io.ModelLoader;
import dev.spiel4j.kafka.CheckpointPublisher;
import dev.spiel4j.io.AtomicFiles;
import dev.spiel4j.kafka.EmbeddedKafka;
import dev.spiel4j.kafka.OutageListener;
import dev.spiel4j.kafka.ProducerSettings;
import dev.spiel4j.kafka.ProtoPublisher;
import dev.spiel4j.kafka.ResilientProducer;
import dev.spiel4j.kafka.TopicAdmin;
import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.KafkaOutage;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Owns one run: starts the embedded Kafka broker when no bootstrap servers are configured, ensures the topics,
 * loads the base model, spawns the {@link Publisher}, {@link Selector}, {@link DataStreamer}, {@link Evaluator}
 * and the {@link TrainerActor} (on the trainer dispatcher, restarted with backoff after a failure: a restarted
 * trainer continues from the last checkpoint), reports progress, and ends the run: when the trainer finished
 * (final checkpoint written) or on {@link Stop} (the trainer writes a final checkpoint first), it waits for
 * pending evaluations and for Kafka to acknowledge what was published, then completes the run's future with a
 * {@link RunSummary} and stops, closing the publishers and the broker.
 */
public final class RunSupervisor extends AbstractBehavior<RunSupervisor.Command> {
    /** File in the run directory holding the bootstrap address of the run's Kafka. */
    public static final String BOOTSTRAP_FILE = "kafka.bootstrap";
    /** Directory in the run directory holding the embedded broker's log. */
    public static final String EMBEDDED_KAFKA_DIR = "kafka";

    public sealed interface Command {
    }

    /** Stop the run early: final checkpoint, then the summary (outcome STOPPED). */
    public record Stop() implements Command {
    }

    /** From the trainer: it (re)started at {@code step}, from {@code checkpoint} if any. */
    public record TrainerStarted(int step, Optional<String> checkpoint) implements Command {
    }

    public record StepDone(StepReport report) implements Command {
    }

    public record CheckpointDone(SavedCheckpoint checkpoint) implements Command {
    }

    public record EvalDone(int step, double loss) implements Command {
    }

    /** From the trainer: every step is done and the final checkpoint written. */
    public record TrainerFinished(int step) implements Command {
    }

    private record TrainerTerminated() implements Command {
    }

    private record StreamerTerminated() implements Command {
    }

    /** From the trainer: it wrote a final checkpoint after {@code step} and stopped, as asked. */
    public record TrainerStopped(int step) implements Command {
    }

    private record EvaluationsDrained() implements Command {
    }

    private record DeadLettersCounted(long count) implements Command {
    }

    private record PublishersFlushed() implements Command {
    }

    private record KafkaOutageChanged(boolean ongoing, Instant since, int buffered, String cause) implements Command {
    }

    /** How long pending evaluations may take before the run ends anyway. */
    private static final Duration END_TIMEOUT = Duration.ofMinutes(10);

    /**
     * @param result     completed with the run's summary, or exceptionally when the run cannot start
     * @param failAtStep debug: the trainer fails once before this step (0 = never)
     */
    public static Behavior<Command> create(RunSettings settings, ProgressListener listener,
                                           CompletableFuture<RunSummary> result, int failAtStep) {
        return Behaviors.setup(ctx -> {
            Resources resources = null;
            try {
                resources = Resources.open(settings, ctx.getSelf());
                return new RunSupervisor(ctx, settings, listener, result, failAtStep, resources);
            } catch (RuntimeException e) {
                if (resources != null) {
                    resources.close();
                }
                result.completeExceptionally(e);
                return Behaviors.stopped();
            }
        });
    }

    /** What the run holds outside the actors: the broker, the producer and the loaded model's plan. */
    private record Resources(RunPlan plan, EmbeddedKafka kafka, String bootstrap, ResilientProducer producer,
                             Publisher.Sinks sinks) {
        static Resources open(RunSettings s, ActorRef<Command> self) {
            Path runDir = s.run().runDir();
            try {
                Files.createDirectories(runDir);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot create the run directory " + runDir, e);
            }
            RunPlan plan = RunPlan.of(s, ModelLoader.load(s.model().path()));
            new CheckpointStore(runDir, s.checkpoint().keep()).latest()
                    .ifPresent(c -> TrainerActor.requireBase(c, plan));
            EmbeddedKafka kafka = s.kafka().embedded()
                    ? EmbeddedKafka.start(runDir.resolve(EMBEDDED_KAFKA_DIR), s.kafka().embeddedPort()) : null;
            ResilientProducer producer = null;
            try {
                String bootstrap = kafka != null ? kafka.bootstrapServers() : s.kafka().bootstrapServers();
                // where `watch`, `pull` and `report` find this run's topics while it runs
                AtomicFiles.writeString(runDir.resolve(BOOTSTRAP_FILE), bootstrap + "\n");
                ProducerSettings ps = s.producerSettings(bootstrap, "spiel4j-" + s.run().id());
                Topics topics = s.kafka().topics();
                TopicAdmin.ensureTopics(bootstrap, topics, s.kafka().partitions(), s.kafka().replicationFactor(),
                        ps.maxRecordBytes());
                producer = new ResilientProducer(ps);
                producer.addListener(new OutageListener() {
                    @Override
                    public void outageStarted(Instant since, Throwable cause, int bufferedRecords) {
                        self.tell(new KafkaOutageChanged(true, since, bufferedRecords, String.valueOf(cause)));
                    }

                    @Override
                    public void outageEnded(Instant since, Duration duration) {
                        self.tell(new KafkaOutageChanged(false, since, 0, "recovered after " + duration));
                    }
                });
                Publisher.Sinks sinks = new Publisher.Sinks(ProtoPublisher.metrics(producer, topics),
                        ProtoPublisher.events(producer, topics), ProtoPublisher.deadLetters(producer, topics),
                        new CheckpointPublisher(producer, topics.checkpoints(), s.checkpoint().chunkSize(),
                                ps.maxRecordBytes()));
                return new Resources(plan, kafka, bootstrap, producer, sinks);
            } catch (RuntimeException e) {
                if (producer != null) {
                    producer.close();
                }
                if (kafka != null) {
                    kafka.close();
                }
                throw e;
            }
        }

        /** Waits for queued checkpoints and buffered records (bounded by the publishers' timeouts). */
        void close() {
            sinks.checkpoints().close();
            producer.close();
            if (kafka != null) {
                kafka.close();
            }
        }
    }

    private final RunSettings settings;
    private final ProgressListener listener;
    private final CompletableFuture<RunSummary> result;
    private final Resources resources;
    private final ActorRef<Publisher.Command> publisher;
    private final ActorRef<DataStreamer.Command> streamer;
    private final ActorRef<Evaluator.Command> evaluator;
    private final ActorRef<TrainerActor.Command> trainer;
    private final long startNanos = System.nanoTime();
    private int starts;
    private int steps;
    private int checkpoints;
    private Path lastCheckpoint;
    private double finalLoss = Double.NaN;
    private OptionalDouble finalEval = OptionalDouble.empty();
    private int outages;
    private long deadLetters;
    private boolean stopping;
    private RunSummary.Outcome outcome;
    private String error;

    private RunSupervisor(ActorContext<Command> ctx, RunSettings settings, ProgressListener listener,
                         CompletableFuture<RunSummary> result, int failAtStep, Resources resources) {
        super(ctx);
        this.settings = settings;
        this.listener = listener;
        this.result = result;
        this.resources = resources;
        RunPlan plan = resources.plan();
        DispatcherSelector blocking = DispatcherSelector.blocking();
        publisher = ctx.spawn(Publisher.create(resources.sinks()), "publisher", blocking);
        ActorRef<Selector.Command> selector = ctx.spawn(Selector.create(), "selector");
        streamer = ctx.spawn(DataStreamer.create(plan, resources.bootstrap(), publisher), "data-streamer");
        evaluator = ctx.spawn(Behaviors.supervise(Evaluator.create(plan, publisher, ctx.getSelf()))
                .onFailure(Exception.class, SupervisorStrategy.restart()), "evaluator", blocking);
        TrainerActor.Peers peers = new TrainerActor.Peers(streamer, selector, evaluator, publisher, ctx.getSelf());
        // A failed trainer is restarted (with backoff, at most 5 times in a row) and resumes from the last
        // checkpoint; the failure-injection flag is shared by its incarnations so a debug failure happens once.
        trainer = ctx.spawn(Behaviors.supervise(TrainerActor.create(plan, peers, new AtomicBoolean(), failAtStep))
                        .onFailure(Exception.class, SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200),
                                Duration.ofSeconds(10), 0.2).withMaxRestarts(5)),
                "trainer", DispatcherSelector.fromConfig(RunSettings.ROOT + ".trainer-dispatcher"));
        ctx.watchWith(trainer, new TrainerTerminated());
        ctx.watchWith(streamer, new StreamerTerminated());
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(TrainerStarted.class, this::onTrainerStarted)
                .onMessage(StepDone.class, m -> {
                    steps = m.report().step();
                    finalLoss = m.report().loss();
                    listener.onStep(m.report());
                    return this;
                })
                .onMessage(CheckpointDone.class, m -> {
                    checkpoints++;
                    lastCheckpoint = m.checkpoint().deltaFile().getParent();
                    listener.onCheckpoint(m.checkpoint());
                    return this;
                })
                .onMessage(EvalDone.class, m -> {
                    finalEval = OptionalDouble.of(m.loss());
                    listener.onEvaluation(m.step(), m.loss());
                    return this;
                })
                .onMessage(KafkaOutageChanged.class, this::onOutage)
                .onMessage(TrainerFinished.class, m -> end(RunSummary.Outcome.COMPLETED, m.step(), null))
                .onMessage(Stop.class, m -> {
                    if (outcome == null && !stopping) {
                        stopping = true;
                        trainer.tell(new TrainerActor.Stop());
                    }
                    return this;
                })
                .onMessage(TrainerStopped.class, m -> end(RunSummary.Outcome.STOPPED, m.step(), null))
                .onMessage(TrainerTerminated.class, m -> outcome != null ? this
                        : stopping ? end(RunSummary.Outcome.STOPPED, steps,
                                "the trainer ended without confirming a final checkpoint")
                        : end(RunSummary.Outcome.FAILED, steps, "the trainer failed " + starts
                                + " times in a row; see the log for the cause"))
                .onMessage(StreamerTerminated.class, m -> end(RunSummary.Outcome.FAILED, steps,
                        "the training data stream failed; see the log for the cause"))
                .onMessage(EvaluationsDrained.class, m -> {
                    getContext().ask(Long.class, streamer, Duration.ofSeconds(30), DataStreamer.GetDeadLetters::new,
                            (n, err) -> new DeadLettersCounted(n == null ? -1 : n));
                    return this;
                })
                .onMessage(DeadLettersCounted.class, m -> {
                    deadLetters = m.count();
                    status(switch (outcome) {
                        case COMPLETED -> RunStatus.State.COMPLETED;
                        case STOPPED -> RunStatus.State.STOPPED;
                        case FAILED -> RunStatus.State.FAILED;
                    }, error == null ? "" : error);
                    getContext().ask(Publisher.Flushed.class, publisher,
                            settings.kafka().deliveryTimeout().multipliedBy(2), Publisher.Flush::new,
                            (ok, err) -> new PublishersFlushed());
                    return this;
                })
                .onMessage(PublishersFlushed.class, m -> {
                    result.complete(new RunSummary(settings.run().id(), settings.run().runDir(), outcome, steps,
                            checkpoints, lastCheckpoint, deadLetters, Math.max(0, starts - 1), outages, finalLoss,
                            finalEval, (System.nanoTime() - startNanos) / 1e9, error));
                    return Behaviors.stopped();
                })
                .onSignal(PostStop.class, s -> {
                    resources.close();
                    result.completeExceptionally(new IllegalStateException("run " + settings.run().id()
                            + " was stopped before it could report"));
                    return this;
                })
                .build();
    }

    private Behavior<Command> onTrainerStarted(TrainerStarted m) {
        starts++;
        steps = m.step();
        if (starts == 1) {
            status(m.checkpoint().isPresent() ? RunStatus.State.RESUMED : RunStatus.State.STARTED,
                    m.checkpoint().map(c -> "resumed from checkpoint " + c).orElse("new run"));
        } else {
            status(RunStatus.State.TRAINER_RESTARTED, "trainer restarted at step " + m.step()
                    + m.checkpoint().map(c -> " from checkpoint " + c).orElse(" from the beginning"));
            listener.onTrainerRestart(m.step());
        }
        return this;
    }

    private Behavior<Command> onOutage(KafkaOutageChanged m) {
        if (m.ongoing()) {
            outages++;
            getContext().getLog().warn("Kafka unavailable since {} ({} records buffered): {}", m.since(),
                    m.buffered(), m.cause());
        } else {
            getContext().getLog().info("Kafka available again: {}", m.cause());
        }
        publisher.tell(new Publisher.PublishEvent(event().setOutage(KafkaOutage.newBuilder().setOngoing(m.ongoing())
                .setSince(com.google.protobuf.Timestamp.newBuilder().setSeconds(m.since().getEpochSecond()))
                .setBufferedRecords(m.buffered()).setCause(m.cause())).build()));
        return this;
    }

    /** Starts the end of the run: drain evaluations, count dead letters, report, flush, complete. */
    private Behavior<Command> end(RunSummary.Outcome how, int step, String why) {
        if (outcome != null) {
            return this;
        }
        outcome = how;
        error = why;
        steps = Math.max(steps, step);
        getContext().ask(Evaluator.Drained.class, evaluator, END_TIMEOUT, Evaluator.Drain::new,
                (ok, err) -> new EvaluationsDrained());
        return this;
    }

    private void status(RunStatus.State state, String message) {
        publisher.tell(new Publisher.PublishEvent(event().setStatus(RunStatus.newBuilder().setState(state)
                .setStep(steps).setMessage(message)).build()));
    }

    private RunEvent.Builder event() {
        return RunEvent.newBuilder().setRunId(settings.run().id()).setTime(DataStreamer.now());
    }
}
