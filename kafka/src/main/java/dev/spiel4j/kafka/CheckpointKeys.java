package dev.spiel4j.kafka;

import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Record keys on the checkpoints topic. A manifest is keyed by its run id, so that compaction keeps the
 * latest manifest of each run; a chunk by {@code <run>/<checkpoint>/<index>}, so that chunks of one
 * checkpoint survive compaction until tombstoned. Every record of a run goes to the partition its run id
 * hashes to, so that the run's records stay in publication order.
 */
final class CheckpointKeys {

    private static final Pattern ID = Pattern.compile("[A-Za-z0-9._-]{1,128}");

    /** A parsed chunk key. */
    record ChunkKey(String checkpointId, int index) {
    }

    private CheckpointKeys() {
    }

    /** Run ids, checkpoint ids and part names: 1-128 of [A-Za-z0-9._-], not "." or "..". */
    static String requireId(String what, String id) {
        Objects.requireNonNull(id, what);
        if (!ID.matcher(id).matches() || id.equals(".") || id.equals("..")) {
            throw new IllegalArgumentException("invalid " + what + " '" + id
                    + "': use 1-128 characters from [A-Za-z0-9._-]");
        }
        return id;
    }

    static String manifestKey(String runId) {
        return runId;
    }

    static String chunkKey(String runId, String checkpointId, int index) {
        return runId + "/" + checkpointId + "/" + index;
    }

    /** The chunk key's checkpoint and index if {@code key} is a chunk key of {@code runId}. */
    static Optional<ChunkKey> parseChunkKey(String runId, String key) {
        String prefix = runId + "/";
        if (!key.startsWith(prefix)) {
            return Optional.empty();
        }
        String rest = key.substring(prefix.length());
        int slash = rest.indexOf('/');
        if (slash <= 0 || rest.indexOf('/', slash + 1) >= 0) {
            return Optional.empty();
        }
        try {
            return Optional.of(new ChunkKey(rest.substring(0, slash), Integer.parseInt(rest.substring(slash + 1))));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }
}
