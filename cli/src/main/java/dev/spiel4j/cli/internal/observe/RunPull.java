package dev.spiel4j.cli.internal.observe;

import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.kafka.CheckpointIntegrityException;
import dev.spiel4j.kafka.CheckpointPuller;
import dev.spiel4j.kafka.PulledCheckpoint;
import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.CheckpointManifest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Comparator;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Writes the sparse fine-tuning of a run's latest checkpoint, rebuilt from the checkpoints topic alone, to a file
 * (what {@code spiel4j pull --run ID --out FILE} does). {@link CheckpointPuller} verifies every checksum; this then
 * loads the {@value #DELTA_PART} part as a {@link SparseFineTuning} and checks it against the manifest before the
 * file appears at {@code out}, so a file at {@code out} always loads.
 */
public final class RunPull {
    /** The checkpoint part holding the sparse fine-tuning ({@link SparseFineTuning#save} format). */
    public static final String DELTA_PART = "delta.sft";

    private RunPull() {
    }

    /**
     * What was pulled.
     *
     * @param file    where the sparse fine-tuning now is
     * @param deltas  trained values in it, over {@code modules} matrices
     */
    public record Pulled(String runId, String checkpointId, long step, String method, Path file, long deltas,
                         int modules) {
    }

    /**
     * @param out     the file to write (replaced when it exists); its directory is created when needed
     * @param timeout bound on each pass over the topic
     * @return empty when the run has no checkpoint on the topic
     * @throws CheckpointIntegrityException when the checkpoint is incomplete or corrupt, has no {@value #DELTA_PART}
     *                                      part, or that part does not load or does not match the manifest
     * @throws IOException                  when Kafka cannot be read (no such topic, timeout)
     */
    public static Optional<Pulled> pull(String bootstrapServers, Topics topics, String runId, Path out,
                                        Duration timeout) throws IOException {
        Path target = out.toAbsolutePath();
        Files.createDirectories(target.getParent());
        Path staging = Files.createTempDirectory(target.getParent(), ".pull-");
        try {
            Optional<PulledCheckpoint> pulled = new CheckpointPuller(bootstrapServers, topics.checkpoints(), timeout)
                    .pullLatest(runId, staging);
            if (pulled.isEmpty()) {
                return Optional.empty();
            }
            CheckpointManifest manifest = pulled.get().manifest();
            String what = "checkpoint '" + manifest.getCheckpointId() + "' of run '" + runId + "'";
            Path delta = pulled.get().files().get(DELTA_PART);
            if (delta == null) {
                throw new CheckpointIntegrityException(what + " has no part '" + DELTA_PART + "', only "
                        + pulled.get().files().keySet());
            }
            SparseFineTuning sft;
            try {
                sft = SparseFineTuning.load(delta);
            } catch (RuntimeException e) {
                throw new CheckpointIntegrityException(what + ": part '" + DELTA_PART
                        + "' is not a sparse fine-tuning: " + e.getMessage());
            }
            if (!manifest.getBaseFingerprint().isEmpty()
                    && !manifest.getBaseFingerprint().equals(sft.baseFingerprint())) {
                throw new CheckpointIntegrityException(what + ": its manifest names base model "
                        + manifest.getBaseFingerprint() + " but the sparse fine-tuning was trained on "
                        + sft.baseFingerprint());
            }
            Files.move(delta, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return Optional.of(new Pulled(runId, manifest.getCheckpointId(), manifest.getStep(), sft.method(), target,
                    sft.numDeltas(), sft.deltas().size()));
        } finally {
            deleteRecursively(staging);
        }
    }

    private static void deleteRecursively(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
