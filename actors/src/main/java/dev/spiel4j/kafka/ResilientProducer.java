package dev.spiel4j.kafka;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Semaphore;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Kafka producer that does not lose records when Kafka is away. Records are buffered locally (bounded by
 * {@link ProducerSettings#bufferBytes()}; {@link #send} blocks while the buffer is full) and handed to an
 * idempotent {@code acks=all} {@link KafkaProducer} by one sender thread, in order. When an attempt fails
 * (broker down, delivery timeout), the failed records go back to the head of the buffer, the outage is
 * reported to the {@link OutageListener}s and in {@link #status()}, the Kafka producer is recreated and the
 * records are retried after an exponential backoff, until they are delivered or the producer is closed.
 * Records Kafka refuses for good (too large for the topic, no such topic name, not authorized) fail their
 * futures at once instead.
 *
 * <p>Delivery is at least once: a record whose acknowledgement was lost may be written twice. Consumers
 * de-duplicate by key (checkpoints) or by run and step (metrics, events).
 */
public final class ResilientProducer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ResilientProducer.class);
    /** Records handed to Kafka per attempt; bounds what is re-sent after a failure. */
    private static final int WINDOW_RECORDS = 512;
    private static final long WINDOW_BYTES = 8L << 20;

    /** A record to deliver; {@code partitionKey}, when set, picks the partition instead of {@code key}. */
    record Outgoing(String topic, String partitionKey, byte[] key, byte[] value) {
        int size() {
            return (key == null ? 0 : key.length) + (value == null ? 0 : value.length);
        }
    }

    private record Pending(Outgoing record, CompletableFuture<RecordMetadata> result, int permits) {
    }

    private final ProducerSettings settings;
    private final Semaphore bufferPermits;
    private final List<OutageListener> listeners = new CopyOnWriteArrayList<>();
    private final Thread sender;

    // Guarded by this.
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private int inFlight;
    private long bufferedBytes;
    private boolean closing;
    private long closeDeadlineNanos;
    private Instant outageSince;
    private String lastError;
    private long delivered;
    private long outages;

    public ResilientProducer(ProducerSettings settings) {
        this.settings = Objects.requireNonNull(settings, "settings");
        this.bufferPermits = new Semaphore((int) settings.bufferBytes());
        this.sender = new Thread(this::runSender, "kafka-sender-" + settings.clientId());
        sender.setDaemon(true);
        sender.start();
    }

    public void addListener(OutageListener listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    /**
     * Queues a record for {@code topic}, partitioned by its key. Blocks while the local buffer is full.
     *
     * @param value null writes a tombstone
     * @return completes when Kafka acknowledged the record; fails only if the producer is closed first
     */
    public CompletableFuture<RecordMetadata> send(String topic, byte[] key, byte[] value) {
        return send(new Outgoing(topic, null, key, value));
    }

    /** Like {@link #send(String, byte[], byte[])} with the partition chosen by hashing {@code partitionKey}. */
    CompletableFuture<RecordMetadata> send(Outgoing record) {
        Objects.requireNonNull(record.topic(), "topic");
        int size = record.size();
        if (size > settings.maxRecordBytes()) {
            throw new IllegalArgumentException("record for topic '" + record.topic() + "' has " + size
                    + " bytes, more than maxRecordBytes " + settings.maxRecordBytes());
        }
        int permits = Math.max(1, size);
        try {
            bufferPermits.acquire(permits);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for room in the Kafka buffer", e);
        }
        CompletableFuture<RecordMetadata> result = new CompletableFuture<>();
        synchronized (this) {
            if (closing) {
                bufferPermits.release(permits);
                throw new IllegalStateException("Kafka producer " + settings.clientId() + " is closed");
            }
            queue.addLast(new Pending(record, result, permits));
            bufferedBytes += permits;
            notifyAll();
        }
        return result;
    }

    public synchronized PublisherStatus status() {
        return new PublisherStatus(outageSince == null, outageSince, queue.size() + inFlight, bufferedBytes,
                delivered, outages, lastError);
    }

    /**
     * Delivers what is buffered, waiting at most {@link ProducerSettings#closeTimeout()}; records still
     * undelivered then fail their futures and are logged as lost.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closing) {
                return;
            }
            closing = true;
            closeDeadlineNanos = System.nanoTime() + settings.closeTimeout().toNanos();
            notifyAll();
        }
        try {
            sender.join(settings.closeTimeout().plus(settings.deliveryTimeout()).toMillis() + 1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void runSender() {
        Duration backoff = settings.minBackoff();
        KafkaProducer<byte[], byte[]> producer = null;
        Map<String, Integer> partitionCounts = new HashMap<>();
        List<Pending> window = List.of();
        try {
            while (true) {
                window = nextWindow();
                if (window.isEmpty()) {
                    return;
                }
                if (producer == null) {
                    producer = newProducer();
                    partitionCounts.clear();
                }
                List<Pending> failed = attempt(producer, partitionCounts, window);
                if (failed.isEmpty()) {
                    backoff = settings.minBackoff();
                    markAvailable();
                    continue;
                }
                synchronized (this) {
                    for (int i = failed.size() - 1; i >= 0; i--) {
                        queue.addFirst(failed.get(i));
                    }
                    inFlight = 0;
                }
                producer.close(Duration.ZERO); // a fresh producer re-resolves metadata and connections
                producer = null;
                sleepUnlessDeadline(backoff);
                backoff = backoff.multipliedBy(2).compareTo(settings.maxBackoff()) > 0
                        ? settings.maxBackoff() : backoff.multipliedBy(2);
            }
        } catch (RuntimeException e) {
            synchronized (this) {
                lastError = e.toString();
                window.stream().filter(p -> !p.result().isDone()).forEach(queue::addFirst); // failed below
            }
            LOG.error("Kafka sender {} stopped by an unexpected error", settings.clientId(), e);
        } finally {
            if (producer != null) {
                producer.close(Duration.ZERO);
            }
            failRemaining();
        }
    }

    /**
     * Sends one window and waits for its outcome. Returns the records to retry, in order; records Kafka
     * refused for good (see {@link #isPermanent}) fail their futures instead of being retried forever.
     */
    private List<Pending> attempt(KafkaProducer<byte[], byte[]> producer, Map<String, Integer> partitionCounts,
                                  List<Pending> window) {
        List<CompletableFuture<RecordMetadata>> attempts = new ArrayList<>(window.size());
        Throwable cause = null;
        for (Pending p : window) {
            CompletableFuture<RecordMetadata> attemptResult = new CompletableFuture<>();
            attempts.add(attemptResult);
            if (cause != null) {
                attemptResult.completeExceptionally(cause); // keep order: nothing after a failed send
                continue;
            }
            try {
                Outgoing r = p.record();
                Integer partition = r.partitionKey() == null ? null
                        : partitionFor(producer, partitionCounts, r.topic(), r.partitionKey());
                producer.send(new ProducerRecord<>(r.topic(), partition, r.key(), r.value()), (md, e) -> {
                    if (e == null) {
                        attemptResult.complete(md);
                    } else {
                        attemptResult.completeExceptionally(e);
                    }
                });
            } catch (RuntimeException e) {
                attemptResult.completeExceptionally(e);
                if (!isPermanent(e)) {
                    cause = e;
                }
            }
        }
        CompletableFuture.allOf(attempts.toArray(CompletableFuture[]::new)).exceptionally(e -> null).join();
        List<Pending> failed = new ArrayList<>();
        Throwable outageCause = null;
        for (int i = 0; i < window.size(); i++) {
            Pending p = window.get(i);
            CompletableFuture<RecordMetadata> a = attempts.get(i);
            Throwable error = a.handle((md, e) -> e).join();
            if (error == null) {
                release(p, true);
                p.result().complete(a.join());
            } else if (isPermanent(error)) {
                LOG.error("Kafka refused a record for topic '{}': {}", p.record().topic(), error.toString());
                release(p, false);
                p.result().completeExceptionally(error);
            } else {
                failed.add(p);
                outageCause = outageCause == null ? error : outageCause;
            }
        }
        if (!failed.isEmpty()) {
            markUnavailable(outageCause, failed.size());
        }
        return failed;
    }

    /**
     * Errors about the record or the topic itself, which no retry can fix. Everything else (timeouts,
     * lost connections, leader changes, a restarted broker that forgot the producer) counts as an outage.
     */
    private static boolean isPermanent(Throwable error) {
        return error instanceof RecordTooLargeException || error instanceof RecordBatchTooLargeException
                || error instanceof InvalidTopicException || error instanceof InvalidRecordException
                || error instanceof AuthorizationException;
    }

    /** The partition the default partitioner would give {@code partitionKey}'s bytes. */
    private static int partitionFor(KafkaProducer<byte[], byte[]> producer, Map<String, Integer> counts,
                                    String topic, String partitionKey) {
        Integer count = counts.get(topic);
        if (count == null) {
            count = producer.partitionsFor(topic).size();
            if (count == 0) {
                throw new UnknownTopicOrPartitionException("topic '" + topic + "' has no partitions (yet)");
            }
            counts.put(topic, count);
        }
        return partitionOf(partitionKey, count);
    }

    static int partitionOf(String partitionKey, int partitionCount) {
        return Utils.toPositive(Utils.murmur2(partitionKey.getBytes(StandardCharsets.UTF_8))) % partitionCount;
    }

    private synchronized List<Pending> nextWindow() {
        while (queue.isEmpty() && !closing) {
            try {
                wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return List.of();
            }
        }
        if (closing && (queue.isEmpty() || System.nanoTime() > closeDeadlineNanos)) {
            return List.of();
        }
        List<Pending> window = new ArrayList<>();
        long bytes = 0;
        while (!queue.isEmpty() && window.size() < WINDOW_RECORDS && (window.isEmpty() || bytes < WINDOW_BYTES)) {
            Pending p = queue.removeFirst();
            bytes += p.permits();
            window.add(p);
        }
        inFlight = window.size();
        return window;
    }

    private void release(Pending p, boolean wasDelivered) {
        synchronized (this) {
            bufferedBytes -= p.permits();
            inFlight--;
            if (wasDelivered) {
                delivered++;
            }
        }
        bufferPermits.release(p.permits());
    }

    private void markUnavailable(Throwable cause, int failed) {
        Instant since;
        int buffered;
        synchronized (this) {
            lastError = String.valueOf(cause);
            if (outageSince != null) {
                return;
            }
            outageSince = Instant.now();
            outages++;
            since = outageSince;
            buffered = queue.size() + failed;
        }
        LOG.warn("Kafka at {} unavailable ({}); {} records buffered, retrying with backoff",
                settings.bootstrapServers(), cause, buffered);
        for (OutageListener l : listeners) {
            l.outageStarted(since, cause, buffered);
        }
    }

    private void markAvailable() {
        Instant since;
        synchronized (this) {
            if (outageSince == null) {
                return;
            }
            since = outageSince;
            outageSince = null;
        }
        Duration duration = Duration.between(since, Instant.now());
        LOG.info("Kafka at {} available again after {}", settings.bootstrapServers(), duration);
        for (OutageListener l : listeners) {
            l.outageEnded(since, duration);
        }
    }

    private void sleepUnlessDeadline(Duration backoff) {
        long sleepNanos = backoff.toNanos();
        synchronized (this) {
            if (closing) {
                sleepNanos = Math.min(sleepNanos, Math.max(0, closeDeadlineNanos - System.nanoTime()));
            }
        }
        try {
            Thread.sleep(sleepNanos / 1_000_000, (int) (sleepNanos % 1_000_000));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void failRemaining() {
        List<Pending> lost;
        synchronized (this) {
            closing = true;
            lost = new ArrayList<>(queue);
            queue.clear();
            inFlight = 0;
            bufferedBytes = 0;
        }
        if (!lost.isEmpty()) {
            LOG.error("Kafka producer {} closed with {} undelivered records (Kafka at {} unavailable: {})",
                    settings.clientId(), lost.size(), settings.bootstrapServers(), lastError);
        }
        IllegalStateException e = new IllegalStateException("not delivered: Kafka producer "
                + settings.clientId() + " closed while Kafka at " + settings.bootstrapServers()
                + " was unavailable");
        for (Pending p : lost) {
            bufferPermits.release(p.permits());
            p.result().completeExceptionally(e);
        }
    }

    private KafkaProducer<byte[], byte[]> newProducer() {
        int timeoutMs = (int) settings.deliveryTimeout().toMillis();
        Map<String, Object> config = new HashMap<>();
        config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, settings.bootstrapServers());
        config.put(ProducerConfig.CLIENT_ID_CONFIG, settings.clientId());
        config.put(ProducerConfig.ACKS_CONFIG, "all");
        config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        config.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        config.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        // delivery.timeout.ms must cover linger + one request.
        config.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, timeoutMs);
        config.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, timeoutMs - 5);
        config.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, timeoutMs);
        config.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, settings.maxRecordBytes() + 4096);
        config.put(ProducerConfig.BUFFER_MEMORY_CONFIG, Math.max(32L << 20, 2 * WINDOW_BYTES));
        config.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 1000);
        return new KafkaProducer<>(config, new ByteArraySerializer(), new ByteArraySerializer());
    }
}
