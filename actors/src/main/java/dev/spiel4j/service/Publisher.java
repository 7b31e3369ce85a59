package dev.spiel4j.service;

import dev.spiel4j.kafka.CheckpointPart;
import dev.spiel4j.kafka.CheckpointPublisher;
import dev.spiel4j.kafka.ProtoPublisher;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.RunEvent;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.slf4j.Logger;

import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Writes a run's records to Kafka: metrics, events, dead letters and checkpoints. Senders never wait: the Kafka
 * client buffers and retries through an outage (idempotent, so nothing is dropped or written twice; see
 * {@code ServiceProducer}), and only this actor blocks when that buffer is full, which is why it runs on the
 * blocking-IO dispatcher.
 * {@link Flush} answers once everything sent so far was acknowledged (or failed for good).
 */
final class Publisher {
    private Publisher() {
    }

    public sealed interface Command {
    }

    public record PublishMetrics(Metrics metrics) implements Command {
    }

    public record PublishEvent(RunEvent event) implements Command {
    }

    public record PublishDeadLetter(DeadLetter deadLetter) implements Command {
    }

    /** Publish the files of a checkpoint (they must stay in place until published). */
    public record PublishCheckpoint(CheckpointManifest header, List<CheckpointPart> parts) implements Command {
    }

    public record Flush(ActorRef<Flushed> replyTo) implements Command {
    }

    public record Flushed() {
    }

    /** The Kafka side of a run's publishing. */
    public record Sinks(ProtoPublisher<Metrics> metrics, ProtoPublisher<RunEvent> events,
                        ProtoPublisher<DeadLetter> deadLetters, CheckpointPublisher checkpoints) {
    }

    public static Behavior<Command> create(Sinks sinks) {
        return Behaviors.setup(ctx -> {
            Set<CompletableFuture<?>> pending = ConcurrentHashMap.newKeySet();
            // Completions run on Kafka's threads, where the actor context must not be touched: keep the logger.
            Logger log = ctx.getLog();
            return Behaviors.receive(Command.class)
                    .onMessage(PublishMetrics.class, m -> track(pending, () -> sinks.metrics().publish(m.metrics()), log, "metrics"))
                    .onMessage(PublishEvent.class, m -> track(pending, () -> sinks.events().publish(m.event()), log, "an event"))
                    .onMessage(PublishDeadLetter.class, m -> track(pending, () -> sinks.deadLetters().publish(m.deadLetter()), log, "a dead letter"))
                    .onMessage(PublishCheckpoint.class, m -> track(pending, () -> sinks.checkpoints().publish(m.header(), m.parts()), log, "checkpoint " + m.header().getCheckpointId()))
                    .onMessage(Flush.class, f -> flush(pending, f))
                    .build();
        });
    }

    private static Behavior<Command> flush(Set<CompletableFuture<?>> pending, Flush f) {
        CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new))
                .whenComplete((ok, error) -> f.replyTo().tell(new Flushed()));
        return Behaviors.same();
    }

    /**
     * Starts a publication and keeps it until Kafka acknowledged it or gave up. A record refused before it reaches
     * the client (a checkpoint file gone, a run id the topic's keys cannot hold) fails like one Kafka gave up on: it
     * is logged and the publisher goes on with the rest, rather than stopping and leaving the run's records unsent.
     */
    private static Behavior<Command> track(Set<CompletableFuture<?>> pending, Supplier<CompletableFuture<?>> publish,
                                           Logger log, String what) {
        CompletableFuture<?> future = started(publish);
        pending.add(future);
        future.whenComplete((ok, error) -> {
            pending.remove(future);
            if (error != null) {
                log.warn("could not publish {}: {}", what, error.toString());
            }
        });
        return Behaviors.same();
    }

    private static CompletableFuture<?> started(Supplier<CompletableFuture<?>> publish) {
        try {
            return publish.get();
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }
}
