package dev.spiel4j.kafka;

import java.time.Duration;
import java.time.Instant;

/**
 * Told when a {@link ResilientProducer} loses and regains Kafka. Called on the producer's sender thread:
 * implementations must return quickly (e.g. tell an actor).
 */
public interface OutageListener {

    /** Records could not be delivered; they stay buffered and are retried with backoff. */
    void outageStarted(Instant since, Throwable cause, int bufferedRecords);

    /** Delivery works again; the backlog is being (or has been) delivered. */
    void outageEnded(Instant since, Duration duration);
}
