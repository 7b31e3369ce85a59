package dev.spiel4j.kafka;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import dev.spiel4j.proto.v1.CheckpointChunk;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.CheckpointRecord;
import dev.spiel4j.proto.v1.PayloadPart;

/**
 * Publishes checkpoints to the compacted checkpoints topic: the payload (the parts' files, concatenated) in
 * chunks of at most {@code chunkBytes}, then, once every chunk is acknowledged, the manifest with the SHA-256
 * of each chunk and of the whole payload, then tombstones for the chunks of the run's previous checkpoint.
 * See {@link CheckpointKeys} for keys and partitioning.
 *
 * <p>Publishing runs on this publisher's own thread, one checkpoint after another, reading the files chunk by
 * chunk: the caller does not wait, and memory stays bounded by the producer's buffer. During a Kafka outage
 * checkpoints wait (on disk) until the producer delivers again, so the files must stay in place until the
 * returned future completes.
 */
public final class CheckpointPublisher implements AutoCloseable {

    /** Default chunk size: well below Kafka's default 1 MiB record limit. */
    public static final int DEFAULT_CHUNK_BYTES = 512 * 1024;
    /** Room for a chunk record's framing (key, ids, index, checksum) beyond its data. */
    private static final int CHUNK_OVERHEAD_BYTES = 1024;

    private final ServiceProducer producer;
    private final String topic;
    private final int chunkBytes;
    private final ExecutorService worker;
    /** The last manifest published per run; touched only on the worker thread. */
    private final Map<String, CheckpointManifest> lastPublished = new HashMap<>();

    /**
     * The record size the producer ({@link ProducerSettings#maxRecordBytes()}) and the checkpoints topic
     * ({@code max.message.bytes}) must allow for chunks of {@code chunkBytes}.
     */
    public static int recordBytesFor(int chunkBytes) {
        return chunkBytes + CHUNK_OVERHEAD_BYTES;
    }

    /**
     * @param maxRecordBytes the producer's {@link ProducerSettings#maxRecordBytes()}: a chunk must fit
     */
    public CheckpointPublisher(ServiceProducer producer, String topic, int chunkBytes, int maxRecordBytes) {
        this.producer = Objects.requireNonNull(producer, "producer");
        this.topic = Objects.requireNonNull(topic, "topic");
        if (chunkBytes < 1024 || recordBytesFor(chunkBytes) > maxRecordBytes) {
            throw new IllegalArgumentException("checkpoint chunk size must be between 1024 and maxRecordBytes - "
                    + CHUNK_OVERHEAD_BYTES + " (" + (maxRecordBytes - CHUNK_OVERHEAD_BYTES) + "), got " + chunkBytes);
        }
        this.chunkBytes = chunkBytes;
        this.worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "checkpoint-publisher-" + topic);
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Queues a checkpoint for publication.
     *
     * @param header run id, checkpoint id, step, data position, RNG state, base fingerprint, method (and
     *               optionally the creation time); the chunk and checksum fields are filled in here
     * @param parts  the files of the payload, in order; names unique
     * @return the complete manifest once Kafka acknowledged it
     * @throws IllegalArgumentException for an invalid id, a duplicate part name or a missing file
     */
    public CompletableFuture<CheckpointManifest> publish(CheckpointManifest header, List<CheckpointPart> parts) {
        CheckpointKeys.requireId("run id", header.getRunId());
        CheckpointKeys.requireId("checkpoint id", header.getCheckpointId());
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("checkpoint " + header.getCheckpointId() + " has no parts");
        }
        List<Long> sizes = new ArrayList<>();
        var names = new HashSet<String>();
        for (CheckpointPart part : parts) {
            if (!names.add(part.name())) {
                throw new IllegalArgumentException("duplicate checkpoint part name '" + part.name() + "'");
            }
            if (!Files.isRegularFile(part.file()) || !Files.isReadable(part.file())) {
                throw new IllegalArgumentException("checkpoint part '" + part.name() + "': " + part.file()
                        + " is not a readable file");
            }
            try {
                sizes.add(Files.size(part.file()));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the size of " + part.file(), e);
            }
        }
        List<CheckpointPart> copy = List.copyOf(parts);
        return CompletableFuture.supplyAsync(() -> publishNow(header, copy, sizes), worker);
    }

    private CheckpointManifest publishNow(CheckpointManifest header, List<CheckpointPart> parts, List<Long> sizes) {
        List<ByteString> chunkSums = new ArrayList<>();
        try {
            return publishNow(header, parts, sizes, chunkSums);
        } catch (RuntimeException e) {
            // No manifest will name the chunks already sent: delete them rather than leave them to compaction.
            try {
                for (int i = 0; i < chunkSums.size(); i++) {
                    send(CheckpointKeys.chunkKey(header.getRunId(), header.getCheckpointId(), i),
                            header.getRunId(), null);
                }
            } catch (IllegalStateException closed) {
                e.addSuppressed(closed); // the producer is closed: nothing more can be sent
            }
            throw e;
        }
    }

    private CheckpointManifest publishNow(CheckpointManifest header, List<CheckpointPart> parts, List<Long> sizes,
                                          List<ByteString> chunkSums) {
        String runId = header.getRunId();
        String checkpointId = header.getCheckpointId();
        MessageDigest whole = sha256();
        List<PayloadPart> layout = new ArrayList<>();
        List<CompletableFuture<?>> acks = new ArrayList<>();
        byte[] buffer = new byte[chunkBytes];
        int fill = 0;
        long offset = 0;
        for (int p = 0; p < parts.size(); p++) {
            CheckpointPart part = parts.get(p);
            long length = 0;
            try (InputStream in = Files.newInputStream(part.file())) {
                int n;
                while ((n = in.read(buffer, fill, chunkBytes - fill)) > 0) {
                    fill += n;
                    length += n;
                    if (fill == chunkBytes) {
                        acks.add(sendChunk(runId, checkpointId, chunkSums, whole, buffer, fill));
                        fill = 0;
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read checkpoint part '" + part.name() + "' from "
                        + part.file(), e);
            }
            if (length != sizes.get(p)) {
                throw new IllegalStateException("checkpoint part '" + part.name() + "' (" + part.file()
                        + ") changed while being published: " + sizes.get(p) + " bytes, then " + length);
            }
            layout.add(PayloadPart.newBuilder().setName(part.name()).setOffset(offset).setLength(length).build());
            offset += length;
        }
        if (fill > 0) {
            acks.add(sendChunk(runId, checkpointId, chunkSums, whole, buffer, fill));
        }
        awaitAll(acks, checkpointId);

        CheckpointManifest.Builder manifest = header.toBuilder()
                .setChunkCount(chunkSums.size())
                .setChunkSize(chunkBytes)
                .setTotalBytes(offset)
                .setSha256(ByteString.copyFrom(whole.digest()))
                .clearChunkSha256().addAllChunkSha256(chunkSums)
                .clearParts().addAllParts(layout);
        if (!header.hasCreatedAt()) {
            Instant now = Instant.now();
            manifest.setCreatedAt(Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()));
        }
        CheckpointManifest published = manifest.build();
        awaitAll(List.of(send(CheckpointKeys.manifestKey(runId), runId,
                CheckpointRecord.newBuilder().setManifest(published).build().toByteArray())), checkpointId);

        CheckpointManifest previous = lastPublished.put(runId, published);
        if (previous != null && !previous.getCheckpointId().equals(checkpointId)) {
            for (int i = 0; i < previous.getChunkCount(); i++) {
                send(CheckpointKeys.chunkKey(runId, previous.getCheckpointId(), i), runId, null);
            }
        }
        return published;
    }

    private CompletableFuture<?> sendChunk(String runId, String checkpointId, List<ByteString> chunkSums,
                                           MessageDigest whole, byte[] buffer, int length) {
        whole.update(buffer, 0, length);
        ByteString data = ByteString.copyFrom(buffer, 0, length);
        ByteString sum = ByteString.copyFrom(sha256().digest(data.toByteArray()));
        int index = chunkSums.size();
        chunkSums.add(sum);
        CheckpointChunk chunk = CheckpointChunk.newBuilder().setRunId(runId).setCheckpointId(checkpointId)
                .setIndex(index).setData(data).setSha256(sum).build();
        return send(CheckpointKeys.chunkKey(runId, checkpointId, index), runId,
                CheckpointRecord.newBuilder().setChunk(chunk).build().toByteArray());
    }

    private CompletableFuture<?> send(String key, String runId, byte[] value) {
        return producer.send(topic, runId, key.getBytes(StandardCharsets.UTF_8), value);
    }

    private static void awaitAll(List<CompletableFuture<?>> acks, String checkpointId) {
        try {
            CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new)).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while publishing checkpoint " + checkpointId, e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("checkpoint " + checkpointId + " was not delivered: "
                    + e.getCause().getMessage(), e.getCause());
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }

    /** Waits up to a minute for queued checkpoints, then gives up on them (they remain on disk). */
    @Override
    public void close() {
        worker.shutdown();
        try {
            if (!worker.awaitTermination(60, TimeUnit.SECONDS)) {
                worker.shutdownNow();
            }
        } catch (InterruptedException e) {
            worker.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
