package dev.spiel4j.kafka;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The service's one Kafka producer: a plain idempotent {@link KafkaProducer} configured by
 * {@link ProducerSettings#clientConfig()} ({@code enable.idempotence}, {@code acks=all}, unbounded retries within
 * {@code delivery.timeout.ms}, {@code buffer.memory}, {@code max.block.ms}). Riding out an outage is the client's
 * own work: records wait in its buffer and are retried with its backoff, in order and without duplicates, since
 * the producer (and with it its producer id and sequence numbers) is never replaced.
 *
 * <p>What this class adds is what the client does not report: an outage. Each record's acknowledgement arrives
 * through its send callback; when the oldest unacknowledged record has waited longer than
 * {@link ProducerSettings#outageAfter()} with no acknowledgement in between, the {@link OutageListener}s hear that
 * Kafka is away (with the client's {@code connection-count} metric in the cause), and the next acknowledgement ends
 * the outage. Waiting is counted from the later of the record's send and the last acknowledgement: records that
 * queued up during an outage drain in several batches once Kafka is back, and that is progress, not a new outage.
 */
public final class ServiceProducer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ServiceProducer.class);

    private final ProducerSettings settings;
    private final Producer<byte[], byte[]> producer;
    private final List<OutageListener> listeners = new CopyOnWriteArrayList<>();
    private final Map<String, Integer> partitionCounts = new ConcurrentHashMap<>();
    private final ScheduledExecutorService watch;

    // Guarded by this.
    /** Send time (System.nanoTime) of every unacknowledged record, by send order. */
    private final TreeMap<Long, Long> unacknowledged = new TreeMap<>();
    private long sent;
    /** System.nanoTime of the last acknowledgement (or of the start, before the first). */
    private long lastAcknowledgedNanos = System.nanoTime();
    private long delivered;
    private long outages;
    private Instant outageSince;
    private String lastError;

    public ServiceProducer(ProducerSettings settings) {
        this(settings, new KafkaProducer<>(settings.clientConfig(), new ByteArraySerializer(),
                new ByteArraySerializer()));
    }

    /**
     * Over a given client, which should be configured as {@link ProducerSettings#clientConfig()} says. Public so that
     * tests, here and in the modules that publish through this class, can give Kafka's {@code MockProducer} and
     * decide when each record is acknowledged, without a broker.
     */
    public ServiceProducer(ProducerSettings settings, Producer<byte[], byte[]> producer) {
        this.settings = Objects.requireNonNull(settings, "settings");
        this.producer = Objects.requireNonNull(producer, "producer");
        this.watch = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "kafka-outage-watch-" + settings.clientId());
            t.setDaemon(true);
            return t;
        });
        long period = Math.max(50, settings.outageAfter().toMillis() / 4);
        watch.scheduleAtFixedRate(this::checkOutage, period, period, TimeUnit.MILLISECONDS);
    }

    public void addListener(OutageListener listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    /**
     * Sends a record to {@code topic}, partitioned by its key (the client's default partitioner). Blocks only while
     * the client's buffer is full ({@code max.block.ms}).
     *
     * @param value null writes a tombstone
     * @return completes when Kafka acknowledged the record; fails when the client gives up on it (a record Kafka
     *     refuses, or {@code delivery.timeout.ms} passed)
     */
    public CompletableFuture<RecordMetadata> send(String topic, byte[] key, byte[] value) {
        return send(new ProducerRecord<>(topic, key, value));
    }

    /** Like {@link #send(String, byte[], byte[])} with the partition chosen by hashing {@code partitionKey}. */
    public CompletableFuture<RecordMetadata> send(String topic, String partitionKey, byte[] key, byte[] value) {
        int partitions = partitionCounts.computeIfAbsent(topic, t -> producer.partitionsFor(t).size());
        return send(new ProducerRecord<>(topic, partitionOf(partitionKey, partitions), key, value));
    }

    /** The partition of {@code partitionKey}'s UTF-8 bytes among {@code partitionCount}: the default partitioner's. */
    public static int partitionOf(String partitionKey, int partitionCount) {
        return Utils.toPositive(Utils.murmur2(partitionKey.getBytes(StandardCharsets.UTF_8))) % partitionCount;
    }

    private CompletableFuture<RecordMetadata> send(ProducerRecord<byte[], byte[]> record) {
        CompletableFuture<RecordMetadata> result = new CompletableFuture<>();
        long id;
        synchronized (this) {
            id = sent++;
            unacknowledged.put(id, System.nanoTime());
        }
        try {
            producer.send(record, (metadata, error) -> {
                acknowledged(id, error);
                if (error == null) {
                    result.complete(metadata);
                } else {
                    result.completeExceptionally(error);
                }
            });
        } catch (RuntimeException e) {
            acknowledged(id, e);
            result.completeExceptionally(e);
        }
        return result;
    }

    synchronized PublisherStatus status() {
        return new PublisherStatus(outageSince == null, outageSince, unacknowledged.size(), delivered, outages,
                lastError);
    }

    /**
     * Waits up to {@link ProducerSettings#closeTimeout()} for what the client still holds; what it could not deliver
     * by then fails its futures, and is logged.
     */
    @Override
    public void close() {
        watch.shutdownNow();
        producer.close(settings.closeTimeout());
        int lost;
        synchronized (this) {
            lost = unacknowledged.size();
        }
        if (lost > 0) {
            LOG.error("Kafka producer {} closed with {} undelivered records (Kafka at {}: {})", settings.clientId(),
                    lost, settings.bootstrapServers(), lastError);
        }
    }

    private void acknowledged(long id, Exception error) {
        Instant endedSince = null;
        synchronized (this) {
            unacknowledged.remove(id);
            if (error == null) {
                delivered++;
                lastAcknowledgedNanos = System.nanoTime();
                if (outageSince != null) {
                    endedSince = outageSince;
                    outageSince = null;
                }
            } else {
                lastError = error.toString();
            }
        }
        if (error != null) {
            LOG.error("Kafka did not take a record from {}: {}", settings.clientId(), error.toString());
        }
        if (endedSince != null) {
            Duration duration = Duration.between(endedSince, Instant.now());
            LOG.info("Kafka at {} available again after {}", settings.bootstrapServers(), duration);
            for (OutageListener l : listeners) {
                l.outageEnded(endedSince, duration);
            }
        }
    }

    /**
     * Starts an outage when the oldest unacknowledged record has waited longer than the settings allow since it was
     * sent or since the last acknowledgement, whichever came later.
     */
    private void checkOutage() {
        Instant since;
        int waiting;
        synchronized (this) {
            if (outageSince != null || unacknowledged.isEmpty()) {
                return;
            }
            long now = System.nanoTime();
            long waitedNanos = Math.min(now - unacknowledged.firstEntry().getValue(), now - lastAcknowledgedNanos);
            if (waitedNanos < settings.outageAfter().toNanos()) {
                return;
            }
            outageSince = Instant.now().minusNanos(waitedNanos);
            outages++;
            since = outageSince;
            waiting = unacknowledged.size();
        }
        String cause = "no acknowledgement from Kafka at " + settings.bootstrapServers() + " for "
                + settings.outageAfter().toMillis() + " ms; the client has " + connections() + " connection(s) and "
                + "keeps " + waiting + " records to retry";
        LOG.warn(cause);
        for (OutageListener l : listeners) {
            l.outageStarted(since, cause, waiting);
        }
    }

    /** The client's {@code connection-count} metric (producer-metrics). */
    private long connections() {
        for (Map.Entry<MetricName, ? extends Metric> m : producer.metrics().entrySet()) {
            if (m.getKey().name().equals("connection-count") && m.getKey().group().equals("producer-metrics")) {
                return Math.round(((Number) m.getValue().metricValue()).doubleValue());
            }
        }
        return -1;
    }
}
