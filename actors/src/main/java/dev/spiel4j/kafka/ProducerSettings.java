package dev.spiel4j.kafka;

import java.time.Duration;
import java.util.Objects;

/**
 * How a {@link ResilientProducer} talks to Kafka and rides out an outage.
 *
 * @param bootstrapServers host:port list
 * @param clientId         client id shown in the broker's logs and metrics
 * @param deliveryTimeout  how long one attempt may take before the records count as undelivered and the
 *                         outage is reported (Kafka's {@code delivery.timeout.ms}; also bounds metadata waits)
 * @param minBackoff       first wait before retrying after a failed attempt; doubles up to {@code maxBackoff}
 * @param maxBackoff       longest wait between attempts
 * @param bufferBytes      local buffer for records not yet acknowledged; {@code send} blocks while it is full,
 *                         so nothing is dropped
 * @param maxRecordBytes   largest record (key + value) accepted; the producer's {@code max.request.size}
 * @param closeTimeout     how long {@code close()} keeps trying to deliver what is buffered
 */
public record ProducerSettings(String bootstrapServers, String clientId, Duration deliveryTimeout,
                               Duration minBackoff, Duration maxBackoff, long bufferBytes, int maxRecordBytes,
                               Duration closeTimeout) {

    public ProducerSettings {
        Objects.requireNonNull(bootstrapServers, "bootstrapServers");
        Objects.requireNonNull(clientId, "clientId");
        if (bootstrapServers.isBlank()) {
            throw new IllegalArgumentException("bootstrapServers must not be empty");
        }
        requirePositive("deliveryTimeout", deliveryTimeout);
        requirePositive("minBackoff", minBackoff);
        requirePositive("maxBackoff", maxBackoff);
        Objects.requireNonNull(closeTimeout, "closeTimeout");
        if (maxBackoff.compareTo(minBackoff) < 0) {
            throw new IllegalArgumentException("maxBackoff " + maxBackoff + " is shorter than minBackoff " + minBackoff);
        }
        if (deliveryTimeout.toMillis() < 100) {
            throw new IllegalArgumentException("deliveryTimeout must be at least 100 ms, got " + deliveryTimeout);
        }
        if (maxRecordBytes < 1024) {
            throw new IllegalArgumentException("maxRecordBytes must be at least 1024, got " + maxRecordBytes);
        }
        if (bufferBytes < maxRecordBytes || bufferBytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("bufferBytes must be between maxRecordBytes (" + maxRecordBytes
                    + ") and 2^31-1, got " + bufferBytes);
        }
    }

    /** Defaults: 30 s delivery timeout, backoff 0.5 s to 30 s, 64 MiB buffer, 2 MiB records, 30 s to close. */
    public static ProducerSettings defaults(String bootstrapServers, String clientId) {
        return new ProducerSettings(bootstrapServers, clientId, Duration.ofSeconds(30), Duration.ofMillis(500),
                Duration.ofSeconds(30), 64L << 20, 2 << 20, Duration.ofSeconds(30));
    }

    public ProducerSettings withDeliveryTimeout(Duration timeout) {
        return new ProducerSettings(bootstrapServers, clientId, timeout, minBackoff, maxBackoff, bufferBytes,
                maxRecordBytes, closeTimeout);
    }

    public ProducerSettings withBackoff(Duration min, Duration max) {
        return new ProducerSettings(bootstrapServers, clientId, deliveryTimeout, min, max, bufferBytes,
                maxRecordBytes, closeTimeout);
    }

    public ProducerSettings withBuffer(long bytes, int maxRecord) {
        return new ProducerSettings(bootstrapServers, clientId, deliveryTimeout, minBackoff, maxBackoff, bytes,
                maxRecord, closeTimeout);
    }

    private static void requirePositive(String name, Duration d) {
        Objects.requireNonNull(d, name);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(name + " must be positive, got " + d);
        }
    }
}
