package dev.spiel4j.service;

import dev.spiel4j.config.RunSettings;
import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.kafka.CheckpointPublisher;
import dev.spiel4j.io.AtomicFiles;
import dev.spiel4j.kafka.EmbeddedKafka;
import dev.spiel4j.kafka.OutageListener;
import dev.spiel4j.kafka.ProducerSettings;
import dev.spiel4j.kafka.ProtoPublisher;
import dev.spiel4j.kafka.RunRecords;
import dev.spiel4j.kafka.ServiceProducer;
import dev.spiel4j.kafka.TopicAdmin;
import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.proto.v1.RunStatus;
import org.apache.pekko.actor.ActorInitializationException;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.ChildFailed;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.Terminated;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;

/**
 * Owns one run: starts the embedded Kafka broker when no bootstrap servers are configured, ensures the topics,
 * loads the base model, spawns the {@link Publisher}, {@link Selector}, {@link DataStreamer}, {@link Evaluator}
 * and the {@link TrainerActor} (on the trainer dispatcher), reports progress, and ends the run: when the trainer
 * finished (final checkpoint written) or on {@link Stop} (the trainer writes a final checkpoint first), it waits
 * for pending evaluations and for Kafka to acknowledge what was published, then completes the run's future with a
 * {@link RunSummary} and stops, closing the publishers and the broker.
 *
 * <p>A failed trainer is restarted here, with backoff, as a new trainer actor that continues from the last
 * checkpoint; the supervisor decides rather than a Pekko restart strategy because the bound is on progress, not
 * on time: at most {@code supervision.max-restarts-without-progress} restarts while no checkpoint newer than the
 * one they resume from is written, whatever the steps at which the trainer fails. The next failure ends the run
 * FAILED with the failed step, its examples ({@link StepFailed}) and the cause.
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
    record TrainerStarted(int step, Optional<String> checkpoint) implements Command {
    }

    record StepDone(StepReport report) implements Command {
    }

    record CheckpointDone(SavedCheckpoint checkpoint) implements Command {
    }

    record EvalDone(int step, double loss) implements Command {
    }

    /** From the trainer: every step is done and the final checkpoint written. */
    record TrainerFinished(int step) implements Command {
    }

    /**
     * From a data-parallel trainer: a step's gradients went between it and {@code workers} workers, {@code bytes} of
     * them, the slowest answer taking {@code seconds} beyond its worker's computation (NaN: a worker was synced).
     */
    record ExchangeDone(int workers, long bytes, double seconds) implements Command {
    }

    /** From a data-parallel trainer: a gradient worker is lost (its micro-batches go to the others). */
    record WorkerLost(String worker, String why, int workersLeft) implements Command {
    }

    /** The backoff after a trainer failure is over: start a new trainer. */
    private record RestartTrainer() implements Command {
    }

    private record StreamerTerminated() implements Command {
    }

    /** From the trainer: it wrote a final checkpoint after {@code step} and stopped, as asked. */
    record TrainerStopped(int step) implements Command {
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
    /** Backoff before the first restart without progress; it doubles with each further one, up to the maximum. */
    private static final Duration MIN_RESTART_BACKOFF = Duration.ofMillis(200);
    private static final Duration MAX_RESTART_BACKOFF = Duration.ofSeconds(10);
    /** Up to this fraction is added to a backoff at random. */
    private static final double RESTART_BACKOFF_JITTER = 0.2;
    private static final String MAX_RESTARTS_KEY = RunSettings.ROOT + ".supervision.max-restarts-without-progress";

    /**
     * @param result   completed with the run's summary, or exceptionally when the run cannot start
     * @param failures debug: failures injected into the trainer
     */
    public static Behavior<Command> create(RunSettings settings, ProgressListener listener,
                                           CompletableFuture<RunSummary> result, FailureInjection failures) {
        return Behaviors.setup(ctx -> {
            Resources resources = null;
            try {
                resources = Resources.open(settings, ctx.getSelf());
                return new RunSupervisor(ctx, settings, listener, result, Crew.spawn(ctx, resources, failures),
                        resources.resumeStep(), resources::close);
            } catch (RuntimeException e) {
                if (resources != null) {
                    resources.close();
                }
                result.completeExceptionally(e);
                return Behaviors.stopped();
            }
        });
    }

    /**
     * A run whose other actors are made elsewhere and that holds nothing to close: how tests put probes and a trainer
     * of their own around the supervisor (the public {@code create} opens Kafka and loads the model). It starts from
     * the beginning: there is no run directory to find a checkpoint in.
     */
    static Behavior<Command> create(RunSettings settings, ProgressListener listener,
                                    CompletableFuture<RunSummary> result, Crew crew) {
        return Behaviors.setup(ctx -> new RunSupervisor(ctx, settings, listener, result, crew, 0, () -> { }));
    }

    /**
     * The actors of a run besides its supervisor: the trainer's peers, and how to make a trainer over them (a new one
     * for each restart; the supervisor spawns and watches it, so that its failure comes as {@link ChildFailed}).
     */
    record Crew(ActorRef<Publisher.Command> publisher, ActorRef<Selector.Command> selector,
                ActorRef<DataStreamer.Command> streamer, ActorRef<Evaluator.Command> evaluator,
                Function<TrainerActor.Peers, Behavior<TrainerActor.Command>> trainer) {

        /** The service's own, spawned as children of the supervisor over the run's resources. */
        private static Crew spawn(ActorContext<Command> ctx, Resources resources, FailureInjection failures) {
            RunPlan plan = resources.plan();
            DispatcherSelector blocking = DispatcherSelector.blocking();
            ActorRef<Publisher.Command> publisher = ctx.spawn(Publisher.create(resources.sinks()), "publisher",
                    blocking);
            ActorRef<Selector.Command> selector = ctx.spawn(Selector.create(), "selector");
            ActorRef<DataStreamer.Command> streamer = ctx.spawn(
                    DataStreamer.create(plan, resources.bootstrap(), publisher, resources.earlierDeadLetters()),
                    "data-streamer");
            ActorRef<Evaluator.Command> evaluator = ctx.spawn(
                    Behaviors.supervise(Evaluator.create(plan, publisher, ctx.getSelf()))
                            .onFailure(Exception.class, SupervisorStrategy.restart()), "evaluator", blocking);
            return new Crew(publisher, selector, streamer, evaluator,
                    peers -> TrainerActor.create(plan, peers, failures));
        }
    }

    /**
     * Tells the supervisor {@code self} when the run's producer loses or regains Kafka: each change becomes a run
     * event, and outages are counted in the summary.
     */
    static OutageListener outageListener(ActorRef<Command> self) {
        return new OutageListener() {
            @Override
            public void outageStarted(Instant since, String cause, int waitingRecords) {
                self.tell(new KafkaOutageChanged(true, since, waitingRecords, cause));
            }

            @Override
            public void outageEnded(Instant since, Duration duration) {
                self.tell(new KafkaOutageChanged(false, since, 0, "recovered after " + duration));
            }
        };
    }

    /**
     * What the run holds outside the actors: the broker, the producer and the loaded model's plan; and the step of
     * the run directory's newest checkpoint (0: none), where the first trainer resumes.
     */
    private record Resources(RunPlan plan, int resumeStep, EmbeddedKafka kafka, String bootstrap,
                             ServiceProducer producer, Publisher.Sinks sinks, List<DeadLetter> earlierDeadLetters) {
        static Resources open(RunSettings s, ActorRef<Command> self) {
            Path runDir = s.run().runDir();
            try {
                Files.createDirectories(runDir);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot create the run directory " + runDir, e);
            }
            RunPlan plan = RunPlan.of(s, ModelLoader.load(s.model().path()));
            // The broker first: a process still hosting this run (a lost coordinator that has not noticed yet) holds
            // its directory until it has written its last checkpoint, which is then the one found below.
            EmbeddedKafka kafka = s.kafka().embedded() ? EmbeddedKafka.start(runDir.resolve(EMBEDDED_KAFKA_DIR),
                    s.kafka().embeddedPort(), s.cluster().enabled() ? s.cluster().takeoverWait() : Duration.ZERO)
                    : null;
            ServiceProducer producer = null;
            try {
                Optional<SavedCheckpoint> latest = new CheckpointStore(runDir, s.checkpoint().keep()).latest();
                latest.ifPresent(c -> TrainerActor.requireResumable(c, plan));
                String bootstrap = kafka != null ? kafka.bootstrapServers() : s.kafka().bootstrapServers();
                // where `watch`, `pull` and `report` find this run's topics while it runs
                AtomicFiles.writeString(runDir.resolve(BOOTSTRAP_FILE), bootstrap + "\n");
                ProducerSettings ps = s.producerSettings(bootstrap, "spiel4j-" + s.run().id());
                Topics topics = s.kafka().topics();
                TopicAdmin.ensureTopics(bootstrap, topics, s.kafka().partitions(), s.kafka().replicationFactor(),
                        ps.maxRecordBytes());
                List<DeadLetter> earlierDeadLetters = earlierDeadLetters(bootstrap, topics, s.run().id());
                producer = new ServiceProducer(ps);
                producer.addListener(outageListener(self));
                Publisher.Sinks sinks = new Publisher.Sinks(ProtoPublisher.metrics(producer, topics),
                        ProtoPublisher.events(producer, topics), ProtoPublisher.deadLetters(producer, topics),
                        new CheckpointPublisher(producer, topics.checkpoints(), s.checkpoint().chunkSize(),
                                ps.maxRecordBytes()));
                return new Resources(plan, latest.map(SavedCheckpoint::step).orElse(0), kafka, bootstrap, producer,
                        sinks, earlierDeadLetters);
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

        /** What the run dead-lettered before this process: a restarted run does not dead-letter those again. */
        private static List<DeadLetter> earlierDeadLetters(String bootstrap, Topics topics, String runId) {
            List<DeadLetter> letters = new ArrayList<>();
            try {
                for (byte[] value : RunRecords.values(bootstrap, topics.deadLetters(), runId, Duration.ofSeconds(60))) {
                    letters.add(DeadLetter.parseFrom(value));
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read run " + runId + "'s earlier dead letters from topic '"
                        + topics.deadLetters() + "' at " + bootstrap + ": " + e.getMessage(), e);
            }
            return letters;
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
    private final Telemetry telemetry;
    private final ProgressListener listener;
    private final CompletableFuture<RunSummary> result;
    /** Closes what the run holds outside the actors, once the supervisor has stopped. */
    private final Runnable release;
    private final ActorRef<Publisher.Command> publisher;
    private final ActorRef<DataStreamer.Command> streamer;
    private final ActorRef<Evaluator.Command> evaluator;
    private final TrainerActor.Peers peers;
    private final Function<TrainerActor.Peers, Behavior<TrainerActor.Command>> newTrainer;
    /** The running trainer; null while a restart waits for its backoff. */
    private ActorRef<TrainerActor.Command> trainer;
    private final long startNanos = System.nanoTime();
    private int restarts;
    /** Step of the checkpoint that restarts resume from, as of the last progress (0: the beginning). */
    private int resumeStep;
    /** Step of the newest checkpoint of the run (0: none). */
    private int newestCheckpoint;
    /** Where the trainer failed since the last progress ("step 13", "start"...), one entry per failure. */
    private final List<String> failuresWithoutProgress = new ArrayList<>();
    /** The last failure of the trainer, for the status event of its restart. */
    private String lastFailure;
    private int steps;
    private int checkpoints;
    private Path lastCheckpoint;
    private double finalLoss = Double.NaN;
    private OptionalDouble finalEval = OptionalDouble.empty();
    private int outages;
    private long deadLetters;
    private int workers;
    private int workerFailures;
    private long exchangeSteps;
    private long exchangeBytes;
    /** Of the steps with workers, those that synced none (a sync's model load is not the exchange's time). */
    private long exchangeTimedSteps;
    private double exchangeSeconds;
    private boolean stopping;
    private RunSummary.Outcome outcome;
    private String error;

    /** @param resumeStep the step of the run directory's newest checkpoint (0: none), where the first trainer starts */
    private RunSupervisor(ActorContext<Command> ctx, RunSettings settings, ProgressListener listener,
                         CompletableFuture<RunSummary> result, Crew crew, int resumeStep, Runnable release) {
        super(ctx);
        this.settings = settings;
        this.telemetry = new Telemetry(settings);
        this.listener = listener;
        this.result = result;
        this.release = release;
        this.resumeStep = resumeStep;
        this.newestCheckpoint = resumeStep;
        publisher = crew.publisher();
        streamer = crew.streamer();
        evaluator = crew.evaluator();
        newTrainer = crew.trainer();
        peers = new TrainerActor.Peers(streamer, crew.selector(), evaluator, publisher, ctx.getSelf());
        ctx.watchWith(streamer, new StreamerTerminated());
        startTrainer();
    }

    /** Spawns a trainer (it resumes from the newest checkpoint) and watches it: its failure comes as ChildFailed. */
    private void startTrainer() {
        trainer = getContext().spawn(newTrainer.apply(peers), "trainer-" + (restarts + 1),
                DispatcherSelector.fromConfig(RunSettings.ROOT + ".trainer-dispatcher"));
        getContext().watch(trainer);
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(TrainerStarted.class, this::onTrainerStarted)
                .onMessage(StepDone.class, this::onStepDone)
                .onMessage(CheckpointDone.class, this::onCheckpointDone)
                .onMessage(EvalDone.class, this::onEvalDone)
                .onMessage(KafkaOutageChanged.class, this::onOutage)
                .onMessage(ExchangeDone.class, this::onExchangeDone)
                .onMessage(WorkerLost.class, this::onWorkerLost)
                .onMessage(TrainerFinished.class, m -> end(RunSummary.Outcome.COMPLETED, m.step(), null))
                .onMessage(Stop.class, this::onStop)
                .onMessage(TrainerStopped.class, m -> end(RunSummary.Outcome.STOPPED, m.step(), null))
                .onMessage(RestartTrainer.class, this::onRestartTrainer)
                .onSignal(ChildFailed.class, this::onChildFailed)
                .onSignal(Terminated.class, this::onTerminated)
                .onMessage(StreamerTerminated.class, m -> end(RunSummary.Outcome.FAILED, steps,
                        "the training data stream failed; see the log for the cause"))
                .onMessage(EvaluationsDrained.class, this::onEvaluationsDrained)
                .onMessage(DeadLettersCounted.class, this::onDeadLettersCounted)
                .onMessage(PublishersFlushed.class, this::onPublishersFlushed)
                .onSignal(PostStop.class, this::onPostStop)
                .build();
    }

    private Behavior<Command> onStepDone(StepDone m) {
        steps = m.report().step();
        finalLoss = m.report().loss();
        listener.onStep(m.report());
        return this;
    }

    private Behavior<Command> onCheckpointDone(CheckpointDone m) {
        checkpoints++;
        newestCheckpoint = Math.max(newestCheckpoint, m.checkpoint().step());
        lastCheckpoint = m.checkpoint().deltaFile().getParent();
        listener.onCheckpoint(m.checkpoint());
        return this;
    }

    private Behavior<Command> onEvalDone(EvalDone m) {
        finalEval = OptionalDouble.of(m.loss());
        listener.onEvaluation(m.step(), m.loss());
        return this;
    }

    private Behavior<Command> onRestartTrainer(RestartTrainer m) {
        if (outcome == null && !stopping) {
            restarts++;
            startTrainer();
        }
        return this;
    }

    private Behavior<Command> onChildFailed(ChildFailed s) {
        return s.getRef().equals(trainer) ? onTrainerFailed(s.getCause()) : this;
    }

    /** A trainer that stops without confirming its final checkpoint ends the run. */
    private Behavior<Command> onTerminated(Terminated s) {
        if (!s.getRef().equals(trainer) || outcome != null) {
            return this;
        }
        return end(stopping ? RunSummary.Outcome.STOPPED : RunSummary.Outcome.FAILED, steps,
                "the trainer ended without confirming a final checkpoint");
    }

    private Behavior<Command> onEvaluationsDrained(EvaluationsDrained m) {
        getContext().ask(Long.class, streamer, Duration.ofSeconds(30), DataStreamer.GetDeadLetters::new,
                (n, err) -> new DeadLettersCounted(n == null ? -1 : n));
        return this;
    }

    private Behavior<Command> onDeadLettersCounted(DeadLettersCounted m) {
        deadLetters = m.count();
        status(switch (outcome) {
            case COMPLETED -> RunStatus.State.COMPLETED;
            case STOPPED -> RunStatus.State.STOPPED;
            case FAILED -> RunStatus.State.FAILED;
        }, error == null ? "" : error);
        getContext().ask(Publisher.Flushed.class, publisher, settings.kafka().outageAfter().multipliedBy(2),
                Publisher.Flush::new, (ok, err) -> new PublishersFlushed());
        return this;
    }

    private Behavior<Command> onPublishersFlushed(PublishersFlushed m) {
        result.complete(new RunSummary(settings.run().id(), settings.run().runDir(), outcome, steps, checkpoints,
                lastCheckpoint, deadLetters, restarts, outages, finalLoss, finalEval,
                (System.nanoTime() - startNanos) / 1e9, new RunSummary.Cluster(workers, workerFailures,
                exchangeSteps == 0 ? 0 : exchangeBytes / exchangeSteps,
                exchangeTimedSteps == 0 ? 0 : exchangeSeconds / exchangeTimedSteps), error));
        return Behaviors.stopped();
    }

    private Behavior<Command> onPostStop(PostStop s) {
        release.run();
        result.completeExceptionally(new IllegalStateException("run " + settings.run().id()
                + " was stopped before it could report"));
        return this;
    }

    private Behavior<Command> onTrainerStarted(TrainerStarted m) {
        steps = m.step();
        newestCheckpoint = Math.max(newestCheckpoint, m.step());
        if (restarts == 0) {
            status(m.checkpoint().isPresent() ? RunStatus.State.RESUMED : RunStatus.State.STARTED,
                    m.checkpoint().map(c -> "resumed from checkpoint " + c).orElse("new run"));
        } else {
            status(RunStatus.State.TRAINER_RESTARTED, "trainer restarted at step " + m.step()
                    + m.checkpoint().map(c -> " from checkpoint " + c).orElse(" from the beginning")
                    + " after it failed at " + lastFailure);
            listener.onTrainerRestart(m.step());
        }
        return this;
    }

    private Behavior<Command> onStop(Stop m) {
        if (outcome != null || stopping) {
            return this;
        }
        stopping = true;
        if (trainer == null) {
            // between a failure and its restart: the last checkpoint is the newest state there is
            return end(RunSummary.Outcome.STOPPED, newestCheckpoint, "stopped while the failed trainer waited for"
                    + " its restart; the run resumes from the checkpoint of step " + newestCheckpoint);
        }
        trainer.tell(new TrainerActor.Stop());
        return this;
    }

    /**
     * Restarts the failed trainer after a backoff, or ends the run FAILED when the restarts since the last
     * progress (a checkpoint newer than the one they resume from) would exceed the configured bound.
     */
    private Behavior<Command> onTrainerFailed(Throwable cause) {
        trainer = null;
        String where;
        if (cause instanceof StepFailed f) {
            where = "step " + f.step();
            lastFailure = f.getMessage();
        } else if (cause instanceof ActorInitializationException && cause.getCause() != null) {
            // Pekko wraps what the trainer's constructor threw (e.g. loading the checkpoint)
            where = "start";
            lastFailure = "start (resuming from " + (newestCheckpoint == 0 ? "the beginning"
                    : "the checkpoint of step " + newestCheckpoint) + "): " + StepFailed.describe(cause.getCause());
        } else {
            where = "after step " + steps;
            lastFailure = where + " (outside a step): " + StepFailed.describe(cause);
        }
        if (outcome != null) {
            return this;
        }
        if (stopping) {
            return end(RunSummary.Outcome.STOPPED, steps, "the trainer failed before its final checkpoint, at "
                    + lastFailure);
        }
        if (newestCheckpoint > resumeStep) {
            resumeStep = newestCheckpoint;
            failuresWithoutProgress.clear();
        }
        failuresWithoutProgress.add(where);
        int max = settings.supervision().maxRestartsWithoutProgress();
        int failed = failuresWithoutProgress.size();
        if (failed > max) {
            String why = "the trainer failed " + failed + (failed == 1 ? " time " : " times ")
                    + (resumeStep == 0 ? "before writing a checkpoint"
                    : "after the checkpoint of step " + resumeStep + " without writing a newer one")
                    + " (" + String.join(", ", failuresWithoutProgress) + "; " + MAX_RESTARTS_KEY + " = " + max
                    + "); the last failure: " + lastFailure;
            listener.onTrainerFailure("run FAILED: " + why);
            return end(RunSummary.Outcome.FAILED, steps, why);
        }
        long backoff = Math.min(MAX_RESTART_BACKOFF.toMillis(),
                MIN_RESTART_BACKOFF.toMillis() << Math.min(failed - 1, 20));
        backoff += (long) (backoff * RESTART_BACKOFF_JITTER * ThreadLocalRandom.current().nextDouble());
        // Scheduled before it is announced: whoever hears of the restart can count on it being scheduled
        // (RunSupervisorTest moves a manual clock on as soon as it hears).
        getContext().scheduleOnce(Duration.ofMillis(backoff), getContext().getSelf(), new RestartTrainer());
        listener.onTrainerFailure("trainer failed at " + lastFailure + "; restart " + failed + " of at most " + max
                + " without a new checkpoint, in " + backoff + " ms");
        return this;
    }

    private Behavior<Command> onExchangeDone(ExchangeDone m) {
        workers = m.workers();
        exchangeSteps++;
        exchangeBytes += m.bytes();
        if (!Double.isNaN(m.seconds())) {
            exchangeTimedSteps++;
            exchangeSeconds += m.seconds();
        }
        return this;
    }

    private Behavior<Command> onWorkerLost(WorkerLost m) {
        workerFailures++;
        listener.onTrainerFailure("gradient worker " + m.worker() + " lost (" + m.why()
                + "); its micro-batches go to the others");
        publisher.tell(new Publisher.PublishEvent(telemetry.workerLost(m.worker(), m.why(), m.workersLeft())));
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
        publisher.tell(new Publisher.PublishEvent(telemetry.outage(m.ongoing(), m.since(), m.buffered(), m.cause())));
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
        publisher.tell(new Publisher.PublishEvent(telemetry.status(state, steps, message)));
    }
}
