package dev.spiel4j.kafka;

import java.nio.charset.StandardCharsets;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

import com.google.protobuf.Message;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.RunEvent;
import org.apache.kafka.clients.producer.RecordMetadata;

/**
 * Publishes one kind of protobuf message to one topic, keyed by run id, through the {@link ServiceProducer}
 * (so records survive a Kafka outage, once each). Use the factories: {@link #metrics}, {@link #events},
 * {@link #deadLetters}.
 *
 * @param <M> the message type
 */
public final class ProtoPublisher<M extends Message> {

    private final ServiceProducer producer;
    private final String topic;
    private final Function<M, String> runId;

    private ProtoPublisher(ServiceProducer producer, String topic, Function<M, String> runId) {
        this.producer = Objects.requireNonNull(producer, "producer");
        this.topic = Objects.requireNonNull(topic, "topic");
        this.runId = runId;
    }

    public static ProtoPublisher<Metrics> metrics(ServiceProducer producer, Topics topics) {
        return new ProtoPublisher<>(producer, topics.metrics(), Metrics::getRunId);
    }

    public static ProtoPublisher<RunEvent> events(ServiceProducer producer, Topics topics) {
        return new ProtoPublisher<>(producer, topics.events(), RunEvent::getRunId);
    }

    public static ProtoPublisher<DeadLetter> deadLetters(ServiceProducer producer, Topics topics) {
        return new ProtoPublisher<>(producer, topics.deadLetters(), DeadLetter::getRunId);
    }

    public String topic() {
        return topic;
    }

    /**
     * Queues {@code message}; blocks only while the producer's buffer is full.
     *
     * @return completes when Kafka acknowledged it
     */
    public CompletableFuture<RecordMetadata> publish(M message) {
        String key = CheckpointKeys.requireId("run id", runId.apply(message));
        return producer.send(topic, key.getBytes(StandardCharsets.UTF_8), message.toByteArray());
    }
}
