package dev.spiel4j.service;

import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.checkpoint.TrainingStateFile;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.MethodState;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The checkpoints of one run in {@code <run dir>/checkpoints/step-NNNNNN/}: the sparse fine-tuning file
 * ({@value #DELTA_FILE}) and the training-state file ({@value #STATE_FILE}: the method's state tensors, the step,
 * the data position, the seed and the base fingerprint as metadata). A checkpoint is written into a hidden
 * temporary directory and renamed into place, so a directory named {@code step-*} is always complete.
 */
public final class CheckpointStore {
    public static final String DELTA_FILE = "delta.sft";
    public static final String STATE_FILE = "state.bin";
    private static final Pattern NAME = Pattern.compile("step-(\\d{6,})");
    private static final String SHAPE = "shape.";

    private final Path dir;
    private final int keep;

    /** @param keep checkpoints kept after each write (0 = all) */
    public CheckpointStore(Path runDir, int keep) {
        this.dir = runDir.resolve("checkpoints");
        this.keep = keep;
    }

    public Path dir() {
        return dir;
    }

    /** The id of the checkpoint after {@code step} steps. */
    public static String idOf(int step) {
        return String.format("step-%06d", step);
    }

    /**
     * Writes the checkpoint of {@code step}, or keeps the existing one for that step (same step = same state, since
     * training is deterministic), then deletes all but the newest {@code keep}.
     */
    public SavedCheckpoint write(String runId, long seed, SparseFineTuning deltas, String baseStorage,
                                 MethodState state, StreamPosition position) {
        return write(runId, seed, deltas, baseStorage, state, position, dir -> { });
    }

    /**
     * {@link #write(String, long, SparseFineTuning, String, MethodState, StreamPosition)}, with {@code alsoWrite}
     * adding files (a LoRA run's PEFT adapter) to the checkpoint directory before it appears.
     */
    public SavedCheckpoint write(String runId, long seed, SparseFineTuning deltas, String baseStorage,
                                 MethodState state, StreamPosition position, Consumer<Path> alsoWrite) {
        String id = idOf(state.step());
        Path target = dir.resolve(id);
        try {
            Files.createDirectories(dir);
            if (!Files.isDirectory(target)) {
                Path tmp = Files.createTempDirectory(dir, "." + id + "-");
                deltas.save(tmp.resolve(DELTA_FILE));
                stateFile(runId, seed, deltas.baseFingerprint(), baseStorage, state, position)
                        .save(tmp.resolve(STATE_FILE));
                alsoWrite.accept(tmp);
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, target);
                }
            }
            prune();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write checkpoint " + target + ": " + e.getMessage(), e);
        }
        return new SavedCheckpoint(id, state.step(), target.resolve(DELTA_FILE), target.resolve(STATE_FILE),
                deltas.baseFingerprint(), baseStorage, position, state);
    }

    /**
     * The newest checkpoint, loaded and checked: both files parse, the state's step, method and fingerprint
     * agree with the directory name and the sparse fine-tuning file.
     *
     * @throws IllegalArgumentException or {@link dev.spiel4j.io.ModelFormatException} naming the file at fault
     */
    public Optional<SavedCheckpoint> latest() {
        List<Path> all = checkpoints();
        if (all.isEmpty()) {
            return Optional.empty();
        }
        Path newest = all.get(all.size() - 1);
        return Optional.of(load(newest));
    }

    /** Checkpoint directories, oldest first. */
    public List<Path> checkpoints() {
        return checkpointsIn(dir);
    }

    /** The checkpoint directories ({@code step-NNNNNN}) in a run's checkpoints folder, oldest first. */
    public static List<Path> checkpointsIn(Path dir) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> Files.isDirectory(p) && NAME.matcher(p.getFileName().toString()).matches())
                    .sorted(Comparator.comparing(p -> p.getFileName().toString()))
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list checkpoints in " + dir, e);
        }
    }

    private static SavedCheckpoint load(Path checkpoint) {
        Matcher m = NAME.matcher(checkpoint.getFileName().toString());
        if (!m.matches()) {
            throw new IllegalArgumentException(checkpoint + " is not a checkpoint directory");
        }
        Path deltaFile = checkpoint.resolve(DELTA_FILE);
        Path stateFile = checkpoint.resolve(STATE_FILE);
        SparseFineTuning deltas = SparseFineTuning.load(deltaFile);
        TrainingStateFile file = TrainingStateFile.load(stateFile);
        Map<String, String> meta = file.metadata();
        String where = stateFile.toString();
        int step = Integer.parseInt(require(meta, "step", where));
        if (step != Integer.parseInt(m.group(1))) {
            throw new IllegalArgumentException(where + ": step " + step + " does not match its directory "
                    + checkpoint.getFileName());
        }
        String method = require(meta, "method", where);
        String base = require(meta, "base_fingerprint", where);
        if (!base.equals(deltas.baseFingerprint()) || !method.equals(deltas.method())) {
            throw new IllegalArgumentException(checkpoint + ": the state file (" + method + " on " + base
                    + ") and the delta file (" + deltas.method() + " on " + deltas.baseFingerprint() + ") disagree");
        }
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        file.floats().forEach((n, a) -> tensors.put(n, HostArrays.f32(n, shape(meta, n, a.length), a)));
        file.ints().forEach((n, a) -> tensors.put(n, reshape(HostArrays.i32(n, a), shape(meta, n, a.length))));
        file.longs().forEach((n, a) -> tensors.put(n, reshape(HostArrays.i64(n, a), shape(meta, n, a.length))));
        // checkpoints from before model.quantize existed were trained on dense bases
        String storage = meta.getOrDefault("base_storage", "none");
        return new SavedCheckpoint(checkpoint.getFileName().toString(), step, deltaFile, stateFile, base, storage,
                StreamPosition.fromMetadata(meta, where), new MethodState(method, step, tensors));
    }

    private static TrainingStateFile stateFile(String runId, long seed, String fingerprint, String baseStorage,
                                               MethodState state, StreamPosition position) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("run_id", runId);
        meta.put("step", Integer.toString(state.step()));
        meta.put("method", state.method());
        meta.put("base_fingerprint", fingerprint);
        meta.put("base_storage", baseStorage);
        meta.put("seed", Long.toString(seed));
        meta.putAll(position.toMetadata());
        Map<String, float[]> floats = new LinkedHashMap<>();
        Map<String, int[]> ints = new LinkedHashMap<>();
        Map<String, long[]> longs = new LinkedHashMap<>();
        state.tensors().forEach((name, t) -> {
            // The state file stores vectors; the shape goes to the metadata so LoRA's matrices come back whole.
            meta.put(SHAPE + name, Arrays.toString(t.shape()));
            switch (t.dtype()) {
                case F32 -> floats.put(name, HostArrays.floats(t));
                case I32 -> ints.put(name, HostArrays.ints(t));
                case I64 -> longs.put(name, HostArrays.longs(t));
                default -> throw new IllegalArgumentException("method state tensor '" + name + "' is " + t.dtype()
                        + "; checkpoints hold F32, I32 and I64");
            }
        });
        return new TrainingStateFile(meta, floats, ints, longs);
    }

    private static long[] shape(Map<String, String> meta, String name, int numel) {
        String text = meta.get(SHAPE + name);
        if (text == null) {
            return new long[]{numel};
        }
        String inner = text.substring(1, text.length() - 1).trim();
        long[] shape = inner.isEmpty() ? new long[0]
                : Arrays.stream(inner.split(",")).mapToLong(s -> Long.parseLong(s.trim())).toArray();
        if (Arrays.stream(shape).reduce(1, (a, b) -> a * b) != numel) {
            throw new IllegalArgumentException("state tensor '" + name + "' has " + numel + " values but shape "
                    + text);
        }
        return shape;
    }

    private static HostTensor reshape(HostTensor t, long[] shape) {
        return new HostTensor(t.name(), shape, t.dtype(), t.data());
    }

    private static String require(Map<String, String> meta, String key, String where) {
        String v = meta.get(key);
        if (v == null) {
            throw new IllegalArgumentException(where + ": training-state metadata '" + key + "' is missing");
        }
        return v;
    }

    /**
     * Deletes all but the newest {@code keep} checkpoints, and the half-written temporary directories
     * ({@code .step-NNNNNN-*}) of writes that a killed process never finished: one trainer writes at a time, so after
     * a completed write every such directory is abandoned.
     */
    private void prune() throws IOException {
        List<Path> doomed = new ArrayList<>();
        try (Stream<Path> entries = Files.list(dir)) {
            entries.filter(p -> p.getFileName().toString().startsWith(".step-")).forEach(doomed::add);
        }
        List<Path> all = checkpoints();
        if (keep > 0 && all.size() > keep) {
            doomed.addAll(all.subList(0, all.size() - keep));
        }
        for (Path old : doomed) {
            try (Stream<Path> files = Files.list(old)) {
                for (Path f : files.toList()) {
                    Files.delete(f);
                }
            }
            Files.delete(old);
        }
    }
}
