package dev.spiel4j.kafka;

import java.time.Duration;
import java.time.Instant;

/**
 * Told when a {@link ServiceProducer} loses and regains Kafka. Called on the producer's watch thread or the Kafka
 * client's I/O thread: implementations must return quickly (e.g. tell an actor).
 */
public interface OutageListener {

    /** Records have waited too long for Kafka; the client keeps them and retries. */
    void outageStarted(Instant since, String cause, int waitingRecords);

    /** Delivery works again; the backlog is being (or has been) delivered. */
    void outageEnded(Instant since, Duration duration);
}
