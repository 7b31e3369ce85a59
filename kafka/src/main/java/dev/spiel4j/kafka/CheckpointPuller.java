package dev.spiel4j.kafka;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.spiel4j.proto.v1.CheckpointChunk;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.CheckpointRecord;
import dev.spiel4j.proto.v1.PayloadPart;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;

/**
 * Rebuilds the latest checkpoint of a run from the checkpoints topic alone (what {@code spiel4j pull} does).
 * It reads the run's partition twice without a consumer group: first the keys, to find the run's last
 * manifest and where each chunk is, then the chunks of that manifest, each checked against its SHA-256 and
 * the manifest's, written into place, and finally the whole payload against the manifest's SHA-256. Only
 * then do the files appear under their names; a corrupt or incomplete checkpoint is refused with a
 * {@link CheckpointIntegrityException} and leaves nothing behind. Memory stays at one poll's worth of records.
 */
public final class CheckpointPuller {

    private final String topic;
    private final Duration timeout;
    private final RunPartition run;

    /** @param timeout bound on each read pass (metadata, offsets, polling to the end) */
    public CheckpointPuller(String bootstrapServers, String topic, Duration timeout) {
        this.run = new RunPartition(bootstrapServers, topic, timeout, "spiel4j-checkpoint-puller");
        this.topic = topic;
        this.timeout = timeout;
    }

    /** The latest manifest of {@code runId} on the topic, if any. */
    public Optional<CheckpointManifest> latestManifest(String runId) throws IOException {
        CheckpointKeys.requireId("run id", runId);
        try (KafkaConsumer<byte[], byte[]> consumer = run.newConsumer()) {
            return scan(consumer, runId).map(Scan::manifest);
        }
    }

    /**
     * Writes each part of the latest checkpoint of {@code runId} to {@code outDir}/name (replacing existing
     * files) after verifying every checksum.
     *
     * @return empty if the run has no checkpoint on the topic
     * @throws CheckpointIntegrityException if the latest checkpoint is incomplete or corrupt
     */
    public Optional<PulledCheckpoint> pullLatest(String runId, Path outDir) throws IOException {
        CheckpointKeys.requireId("run id", runId);
        try (KafkaConsumer<byte[], byte[]> consumer = run.newConsumer()) {
            Optional<Scan> scan = scan(consumer, runId);
            if (scan.isEmpty()) {
                return Optional.empty();
            }
            CheckpointManifest manifest = scan.get().manifest();
            validateManifest(manifest);
            Files.createDirectories(outDir);
            PayloadFiles files = new PayloadFiles(manifest, outDir);
            try {
                readChunks(consumer, scan.get(), files);
                files.verify();
                return Optional.of(new PulledCheckpoint(manifest, files.commit()));
            } finally {
                files.deletePartials();
            }
        }
    }

    /** The run's latest manifest and, for its checkpoint, the offset of each chunk by index. */
    private record Scan(TopicPartition partition, CheckpointManifest manifest, Map<Integer, Long> chunkOffsets) {
    }

    private Optional<Scan> scan(KafkaConsumer<byte[], byte[]> consumer, String runId) throws IOException {
        TopicPartition partition = run.of(consumer, runId);
        consumer.assign(List.of(partition));
        consumer.seekToBeginning(List.of(partition));
        long end = consumer.endOffsets(List.of(partition), timeout).get(partition);
        String manifestKey = CheckpointKeys.manifestKey(runId);
        CheckpointManifest[] latest = {null};
        Map<CheckpointKeys.ChunkKey, Long> chunks = new HashMap<>();
        IOException[] failure = {null};
        run.poll(consumer, partition, end, record -> {
            if (failure[0] != null || record.key() == null) {
                return;
            }
            String key = new String(record.key(), StandardCharsets.UTF_8);
            if (key.equals(manifestKey)) {
                if (record.value() == null) {
                    latest[0] = null; // the run's checkpoints were deleted
                    return;
                }
                try {
                    CheckpointRecord value = CheckpointRecord.parseFrom(record.value());
                    if (!value.hasManifest() || !value.getManifest().getRunId().equals(runId)) {
                        failure[0] = new CheckpointIntegrityException("record at " + where(record)
                                + " is keyed as the manifest of run '" + runId + "' but is not one");
                        return;
                    }
                    latest[0] = value.getManifest();
                } catch (InvalidProtocolBufferException e) {
                    failure[0] = new CheckpointIntegrityException("manifest of run '" + runId + "' at "
                            + where(record) + " is not a valid CheckpointRecord: " + e.getMessage());
                }
            } else {
                CheckpointKeys.parseChunkKey(runId, key).ifPresent(chunk -> {
                    if (record.value() == null) {
                        chunks.remove(chunk);
                    } else {
                        chunks.put(chunk, record.offset()); // a re-sent chunk: the later copy wins
                    }
                });
            }
        });
        if (failure[0] != null) {
            throw failure[0];
        }
        if (latest[0] == null) {
            return Optional.empty();
        }
        String checkpointId = latest[0].getCheckpointId();
        Map<Integer, Long> offsets = new TreeMap<>();
        chunks.forEach((k, offset) -> {
            if (k.checkpointId().equals(checkpointId)) {
                offsets.put(k.index(), offset);
            }
        });
        return Optional.of(new Scan(partition, latest[0], offsets));
    }

    private void readChunks(KafkaConsumer<byte[], byte[]> consumer, Scan scan, PayloadFiles files)
            throws IOException {
        CheckpointManifest manifest = scan.manifest();
        Map<Long, Integer> wanted = new HashMap<>();
        for (int i = 0; i < manifest.getChunkCount(); i++) {
            Long offset = scan.chunkOffsets().get(i);
            if (offset == null) {
                throw new CheckpointIntegrityException("checkpoint '" + manifest.getCheckpointId() + "' of run '"
                        + manifest.getRunId() + "' is incomplete: chunk " + i + " of " + manifest.getChunkCount()
                        + " is missing from topic '" + topic + "'");
            }
            wanted.put(offset, i);
        }
        if (wanted.isEmpty()) {
            return;
        }
        long first = wanted.keySet().stream().min(Long::compare).orElseThrow();
        long last = wanted.keySet().stream().max(Long::compare).orElseThrow();
        consumer.seek(scan.partition(), first);
        IOException[] failure = {null};
        run.poll(consumer, scan.partition(), last + 1, record -> {
            Integer index = wanted.get(record.offset());
            if (index == null || failure[0] != null) {
                return;
            }
            try {
                files.write(index, chunkOf(record, manifest, index));
            } catch (IOException e) {
                failure[0] = e;
            }
        });
        if (failure[0] != null) {
            throw failure[0];
        }
    }

    /** The chunk in {@code record}, checked against itself and the manifest. */
    private static ByteString chunkOf(ConsumerRecord<byte[], byte[]> record, CheckpointManifest manifest, int index)
            throws CheckpointIntegrityException {
        String what = "chunk " + index + " of checkpoint '" + manifest.getCheckpointId() + "' of run '"
                + manifest.getRunId() + "' at " + where(record);
        CheckpointChunk chunk;
        try {
            CheckpointRecord value = CheckpointRecord.parseFrom(record.value());
            if (!value.hasChunk()) {
                throw new CheckpointIntegrityException(what + " is not a chunk");
            }
            chunk = value.getChunk();
        } catch (InvalidProtocolBufferException e) {
            throw new CheckpointIntegrityException(what + " is not a valid CheckpointRecord: " + e.getMessage());
        }
        if (chunk.getIndex() != index || !chunk.getCheckpointId().equals(manifest.getCheckpointId())
                || !chunk.getRunId().equals(manifest.getRunId())) {
            throw new CheckpointIntegrityException(what + " names run '" + chunk.getRunId() + "', checkpoint '"
                    + chunk.getCheckpointId() + "', index " + chunk.getIndex());
        }
        long expectedLength = Math.min(manifest.getChunkSize(),
                manifest.getTotalBytes() - (long) index * manifest.getChunkSize());
        if (chunk.getData().size() != expectedLength) {
            throw new CheckpointIntegrityException(what + " holds " + chunk.getData().size() + " bytes, the manifest "
                    + "says " + expectedLength);
        }
        ByteString actual = ByteString.copyFrom(CheckpointPublisher.sha256().digest(chunk.getData().toByteArray()));
        if (!actual.equals(manifest.getChunkSha256(index)) || !actual.equals(chunk.getSha256())) {
            throw new CheckpointIntegrityException(what + " is corrupt: SHA-256 " + hex(actual) + ", expected "
                    + hex(manifest.getChunkSha256(index)));
        }
        return chunk.getData();
    }

    /** Refuses a manifest whose sizes, counts or parts do not add up, before anything is written. */
    private static void validateManifest(CheckpointManifest m) throws CheckpointIntegrityException {
        String what = "manifest of checkpoint '" + m.getCheckpointId() + "' of run '" + m.getRunId() + "'";
        long total = m.getTotalBytes();
        long chunkSize = m.getChunkSize();
        long expectedChunks = chunkSize == 0 ? (total == 0 ? 0 : -1) : (total + chunkSize - 1) / chunkSize;
        if (expectedChunks != m.getChunkCount() || m.getChunkSha256Count() != m.getChunkCount()) {
            throw new CheckpointIntegrityException(what + " is inconsistent: " + total + " bytes in chunks of "
                    + chunkSize + " but chunk_count " + m.getChunkCount() + " and " + m.getChunkSha256Count()
                    + " chunk checksums");
        }
        if (m.getSha256().size() != 32) {
            throw new CheckpointIntegrityException(what + " has no valid payload SHA-256");
        }
        long offset = 0;
        var names = new java.util.HashSet<String>();
        for (PayloadPart part : m.getPartsList()) {
            try {
                CheckpointKeys.requireId("part name", part.getName());
            } catch (IllegalArgumentException e) {
                throw new CheckpointIntegrityException(what + ": " + e.getMessage());
            }
            if (part.getOffset() != offset || !names.add(part.getName())) {
                throw new CheckpointIntegrityException(what + ": part '" + part.getName() + "' is duplicated or "
                        + "does not start where the previous part ends (" + offset + ")");
            }
            offset += part.getLength();
        }
        if (offset != total || m.getPartsCount() == 0) {
            throw new CheckpointIntegrityException(what + ": its parts cover " + offset + " bytes, the payload has "
                    + total);
        }
    }

    private static String where(ConsumerRecord<?, ?> record) {
        return record.topic() + "/" + record.partition() + "@" + record.offset();
    }

    private static String hex(ByteString bytes) {
        return HexFormat.of().formatHex(bytes.toByteArray());
    }

    /**
     * The payload's parts as ".partial" files in the output directory, written chunk by chunk at their
     * payload positions (chunks may arrive in any order), renamed to their names only once verified.
     */
    private static final class PayloadFiles {
        private final CheckpointManifest manifest;
        private final Map<String, Path> partials = new LinkedHashMap<>();
        private final Map<String, Path> finals = new LinkedHashMap<>();

        PayloadFiles(CheckpointManifest manifest, Path dir) throws IOException {
            this.manifest = manifest;
            for (PayloadPart part : manifest.getPartsList()) {
                Path partial = dir.resolve("." + part.getName() + ".partial");
                Files.deleteIfExists(partial);
                Files.createFile(partial);
                partials.put(part.getName(), partial);
                finals.put(part.getName(), dir.resolve(part.getName()));
            }
        }

        void write(int index, ByteString data) throws IOException {
            long start = (long) index * manifest.getChunkSize();
            long end = start + data.size();
            for (PayloadPart part : manifest.getPartsList()) {
                long from = Math.max(start, part.getOffset());
                long to = Math.min(end, part.getOffset() + part.getLength());
                if (from >= to) {
                    continue;
                }
                ByteBuffer slice = data.substring((int) (from - start), (int) (to - start)).asReadOnlyByteBuffer();
                try (FileChannel channel = FileChannel.open(partials.get(part.getName()), StandardOpenOption.WRITE)) {
                    long position = from - part.getOffset();
                    while (slice.hasRemaining()) {
                        position += channel.write(slice, position);
                    }
                }
            }
        }

        /** Re-reads the written parts in order and checks the payload's size and SHA-256. */
        void verify() throws IOException {
            MessageDigest digest = CheckpointPublisher.sha256();
            long total = 0;
            byte[] buffer = new byte[1 << 16];
            for (PayloadPart part : manifest.getPartsList()) {
                try (InputStream in = Files.newInputStream(partials.get(part.getName()))) {
                    int n;
                    while ((n = in.read(buffer)) > 0) {
                        digest.update(buffer, 0, n);
                        total += n;
                    }
                }
            }
            ByteString actual = ByteString.copyFrom(digest.digest());
            if (total != manifest.getTotalBytes() || !actual.equals(manifest.getSha256())) {
                throw new CheckpointIntegrityException("checkpoint '" + manifest.getCheckpointId() + "' of run '"
                        + manifest.getRunId() + "' is corrupt: payload of " + total + " bytes with SHA-256 "
                        + hex(actual) + ", the manifest says " + manifest.getTotalBytes() + " bytes with "
                        + hex(manifest.getSha256()));
            }
        }

        Map<String, Path> commit() throws IOException {
            for (var e : partials.entrySet()) {
                Files.move(e.getValue(), finals.get(e.getKey()), StandardCopyOption.REPLACE_EXISTING,
                        StandardCopyOption.ATOMIC_MOVE);
            }
            return finals;
        }

        void deletePartials() throws IOException {
            for (Path partial : partials.values()) {
                Files.deleteIfExists(partial);
            }
        }
    }
}
