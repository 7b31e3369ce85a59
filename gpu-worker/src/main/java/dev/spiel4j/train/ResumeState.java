package dev.spiel4j.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.spiel4j.checkpoint.TrainingStateFile;
import dev.spiel4j.data.ShufflePosition;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.MethodState;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What resuming a {@link TrainingRun} needs: the method's state (trainable values, optimizer and selector state,
 * last step) and where the data order stands. Stored as a {@link TrainingStateFile}: every state tensor as a flat
 * array under its own name, and in the metadata the method, the step, the data position and each tensor's shape
 * ({@code shape.<name>} = a JSON array).
 */
public record ResumeState(MethodState method, ShufflePosition data) {

    public TrainingStateFile toFile() {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("method", method.method());
        meta.put("step", Integer.toString(method.step()));
        meta.put("data.epoch", Long.toString(data.epoch()));
        meta.put("data.index", Integer.toString(data.index()));
        Map<String, float[]> floats = new LinkedHashMap<>();
        Map<String, int[]> ints = new LinkedHashMap<>();
        Map<String, long[]> longs = new LinkedHashMap<>();
        for (HostTensor t : method.tensors().values()) {
            meta.put("shape." + t.name(), JsonFiles.MAPPER.valueToTree(t.shape()).toString());
            switch (t.dtype()) {
                case F32 -> floats.put(t.name(), HostArrays.floats(t));
                case I32 -> ints.put(t.name(), HostArrays.ints(t));
                case I64 -> longs.put(t.name(), HostArrays.longs(t));
                default -> throw new IllegalArgumentException("state tensor '" + t.name() + "' is " + t.dtype()
                        + "; training state holds F32, I32 and I64 only");
            }
        }
        return new TrainingStateFile(meta, floats, ints, longs);
    }

    public static ResumeState fromFile(TrainingStateFile file) {
        Map<String, String> meta = file.metadata();
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        file.floats().forEach((n, a) -> tensors.put(n, HostArrays.f32(n, shape(meta, n, a.length), a)));
        file.ints().forEach((n, a) -> tensors.put(n, reshaped(HostArrays.i32(n, a), shape(meta, n, a.length))));
        file.longs().forEach((n, a) -> tensors.put(n, reshaped(HostArrays.i64(n, a), shape(meta, n, a.length))));
        MethodState state = new MethodState(require(meta, "method"), parseInt(meta, "step"), tensors);
        ShufflePosition position = new ShufflePosition(Long.parseLong(require(meta, "data.epoch")),
                parseInt(meta, "data.index"));
        return new ResumeState(state, position);
    }

    public void save(Path file) {
        toFile().save(file);
    }

    public static ResumeState load(Path file) {
        try {
            return fromFile(TrainingStateFile.load(file));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("training state " + file + ": " + e.getMessage(), e);
        }
    }

    private static HostTensor reshaped(HostTensor t, long[] shape) {
        return new HostTensor(t.name(), shape, t.dtype(), t.data());
    }

    /** The recorded shape of {@code name}, checked against its {@code length} elements. */
    private static long[] shape(Map<String, String> meta, String name, int length) {
        String key = "shape." + name;
        long[] shape;
        try {
            shape = JsonFiles.MAPPER.readValue(require(meta, key), long[].class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("metadata '" + key + "' is not a JSON array of sizes");
        }
        if (HostTensor.numel(shape) != length) {
            throw new IllegalArgumentException("metadata '" + key + "' = " + meta.get(key) + " does not hold the "
                    + length + " elements stored under that name");
        }
        return shape;
    }

    private static String require(Map<String, String> meta, String key) {
        String v = meta.get(key);
        if (v == null) {
            throw new IllegalArgumentException("metadata '" + key + "' is missing");
        }
        return v;
    }

    private static int parseInt(Map<String, String> meta, String key) {
        try {
            return Integer.parseInt(require(meta, key));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("metadata '" + key + "' is not an integer: " + meta.get(key));
        }
    }
}
