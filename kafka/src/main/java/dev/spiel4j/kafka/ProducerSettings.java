package dev.spiel4j.kafka;

import org.apache.kafka.clients.producer.ProducerConfig;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * How the service's {@link ServiceProducer} talks to Kafka, as the client's own settings ({@link #clientConfig()}).
 *
 * @param bootstrapServers host:port list
 * @param clientId         client id shown in the broker's logs and metrics
 * @param outageAfter      how long a record may wait for its acknowledgement before the outage is reported
 * @param deliveryTimeout  how long the client keeps a record, retrying, before it gives up on it
 *                         ({@code delivery.timeout.ms}); also how long {@code send} may block on a full buffer
 *                         ({@code max.block.ms})
 * @param minBackoff       first wait before a retry or a reconnection ({@code retry.backoff.ms},
 *                         {@code reconnect.backoff.ms}); the client doubles it up to {@code maxBackoff}
 * @param maxBackoff       longest wait ({@code retry.backoff.max.ms}, {@code reconnect.backoff.max.ms})
 * @param bufferBytes      the client's buffer for records not yet acknowledged ({@code buffer.memory})
 * @param maxRecordBytes   largest record (key + value) accepted ({@code max.request.size}, with room for headers)
 * @param closeTimeout     how long {@code close()} waits for what is buffered
 */
public record ProducerSettings(String bootstrapServers, String clientId, Duration outageAfter,
                               Duration deliveryTimeout, Duration minBackoff, Duration maxBackoff, long bufferBytes,
                               int maxRecordBytes, Duration closeTimeout) {
    /** The client's request timeout; delivery.timeout.ms must cover it plus linger.ms. */
    private static final int REQUEST_TIMEOUT_MS = 30_000;
    private static final int LINGER_MS = 5;
    /** The shortest {@link #deliveryTimeout()} the client accepts: its request timeout plus linger. */
    public static final Duration MIN_DELIVERY_TIMEOUT = Duration.ofMillis(REQUEST_TIMEOUT_MS + LINGER_MS);

    public ProducerSettings {
        Objects.requireNonNull(bootstrapServers, "bootstrapServers");
        Objects.requireNonNull(clientId, "clientId");
        if (bootstrapServers.isBlank()) {
            throw new IllegalArgumentException("bootstrapServers must not be empty");
        }
        requirePositive("outageAfter", outageAfter);
        requirePositive("minBackoff", minBackoff);
        requirePositive("maxBackoff", maxBackoff);
        Objects.requireNonNull(closeTimeout, "closeTimeout");
        if (maxBackoff.compareTo(minBackoff) < 0) {
            throw new IllegalArgumentException("maxBackoff " + maxBackoff + " is shorter than minBackoff " + minBackoff);
        }
        Objects.requireNonNull(deliveryTimeout, "deliveryTimeout");
        if (deliveryTimeout.compareTo(MIN_DELIVERY_TIMEOUT) < 0 || deliveryTimeout.toMillis() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("deliveryTimeout must be between " + MIN_DELIVERY_TIMEOUT
                    + " (Kafka's request timeout plus linger) and 2^31-1 ms, got " + deliveryTimeout);
        }
        if (maxRecordBytes < 1024) {
            throw new IllegalArgumentException("maxRecordBytes must be at least 1024, got " + maxRecordBytes);
        }
        if (bufferBytes < maxRecordBytes) {
            throw new IllegalArgumentException("bufferBytes must be at least maxRecordBytes (" + maxRecordBytes
                    + "), got " + bufferBytes);
        }
    }

    /**
     * Defaults: an outage reported after 30 s without an acknowledgement, records kept for 24 hours, backoff 0.5 s
     * to 30 s, 64 MiB buffer, 2 MiB records, 30 s to close.
     */
    public static ProducerSettings defaults(String bootstrapServers, String clientId) {
        return new ProducerSettings(bootstrapServers, clientId, Duration.ofSeconds(30), Duration.ofHours(24),
                Duration.ofMillis(500), Duration.ofSeconds(30), 64L << 20, 2 << 20, Duration.ofSeconds(30));
    }

    public ProducerSettings withOutageAfter(Duration after) {
        return new ProducerSettings(bootstrapServers, clientId, after, deliveryTimeout, minBackoff, maxBackoff,
                bufferBytes, maxRecordBytes, closeTimeout);
    }

    public ProducerSettings withDeliveryTimeout(Duration timeout) {
        return new ProducerSettings(bootstrapServers, clientId, outageAfter, timeout, minBackoff, maxBackoff,
                bufferBytes, maxRecordBytes, closeTimeout);
    }

    public ProducerSettings withBackoff(Duration min, Duration max) {
        return new ProducerSettings(bootstrapServers, clientId, outageAfter, deliveryTimeout, min, max, bufferBytes,
                maxRecordBytes, closeTimeout);
    }

    public ProducerSettings withBuffer(long bytes, int maxRecord) {
        return new ProducerSettings(bootstrapServers, clientId, outageAfter, deliveryTimeout, minBackoff, maxBackoff,
                bytes, maxRecord, closeTimeout);
    }

    public ProducerSettings withCloseTimeout(Duration timeout) {
        return new ProducerSettings(bootstrapServers, clientId, outageAfter, deliveryTimeout, minBackoff, maxBackoff,
                bufferBytes, maxRecordBytes, timeout);
    }

    /**
     * The client's configuration: idempotent with {@code acks=all} (the broker drops a retried batch it already has,
     * so an outage neither loses nor duplicates a record), retries bounded by {@code delivery.timeout.ms} alone.
     */
    public Map<String, Object> clientConfig() {
        Map<String, Object> c = new HashMap<>();
        c.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        c.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        c.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        c.put(ProducerConfig.ACKS_CONFIG, "all");
        c.put(ProducerConfig.RETRIES_CONFIG, Integer.MAX_VALUE);
        c.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        c.put(ProducerConfig.LINGER_MS_CONFIG, LINGER_MS);
        c.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, REQUEST_TIMEOUT_MS);
        c.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) deliveryTimeout.toMillis());
        c.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, deliveryTimeout.toMillis());
        c.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, minBackoff.toMillis());
        c.put(ProducerConfig.RETRY_BACKOFF_MAX_MS_CONFIG, maxBackoff.toMillis());
        c.put(ProducerConfig.RECONNECT_BACKOFF_MS_CONFIG, minBackoff.toMillis());
        c.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, maxBackoff.toMillis());
        c.put(ProducerConfig.BUFFER_MEMORY_CONFIG, bufferBytes);
        c.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, maxRecordBytes + 4096);
        return c;
    }

    private static void requirePositive(String name, Duration d) {
        Objects.requireNonNull(d, name);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(name + " must be positive, got " + d);
        }
    }
}
