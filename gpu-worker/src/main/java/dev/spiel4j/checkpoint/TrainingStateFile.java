package dev.spiel4j.checkpoint;

import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.SafeTensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * Resumable training state kept apart from the fine-tuning itself (optimizer moments, slot ages, candidate
 * statistics, data position...): named flat {@code float}, {@code int} and {@code long} arrays plus a string
 * metadata map. The trainer decides the names and meaning; this only stores them faithfully, in one safetensors
 * file (F32, I32, I64 vectors; metadata as a JSON object under {@code metadata}).
 *
 * <p>Array names are unique across the three maps. The record copies the arrays in and out, so it is immutable.
 */
public record TrainingStateFile(Map<String, String> metadata, Map<String, float[]> floats, Map<String, int[]> ints,
                                Map<String, long[]> longs) {
    public static final String FORMAT = "training-state";
    public static final int VERSION = 1;

    public TrainingStateFile {
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        floats = copy(floats, float[]::clone);
        ints = copy(ints, int[]::clone);
        longs = copy(longs, long[]::clone);
        Set<String> names = new HashSet<>();
        for (Map<String, ?> m : List.of(floats, ints, longs)) {
            for (String n : m.keySet()) {
                if (!names.add(n)) {
                    throw new IllegalArgumentException("training state array '" + n + "' is defined twice");
                }
            }
        }
    }

    private static <T> Map<String, T> copy(Map<String, T> in, UnaryOperator<T> clone) {
        Map<String, T> out = new LinkedHashMap<>();
        in.forEach((k, v) -> out.put(k, clone.apply(v)));
        return Collections.unmodifiableMap(out);
    }

    public float[] floats(String name) {
        return get(floats, name).clone();
    }

    public int[] ints(String name) {
        return get(ints, name).clone();
    }

    public long[] longs(String name) {
        return get(longs, name).clone();
    }

    private static <T> T get(Map<String, T> m, String name) {
        T v = m.get(name);
        if (v == null) {
            throw new IllegalArgumentException("training state has no array '" + name + "' of that type");
        }
        return v;
    }

    public void save(Path file) {
        List<HostTensor> tensors = new ArrayList<>();
        floats.forEach((n, a) -> tensors.add(SparseFineTuningFile.floatTensor(n, a)));
        ints.forEach((n, a) -> {
            ByteBuffer b = ByteBuffer.allocate(4 * a.length).order(ByteOrder.LITTLE_ENDIAN);
            b.asIntBuffer().put(a);
            tensors.add(new HostTensor(n, new long[]{a.length}, HostDType.I32, b));
        });
        longs.forEach((n, a) -> {
            ByteBuffer b = ByteBuffer.allocate(8 * a.length).order(ByteOrder.LITTLE_ENDIAN);
            b.asLongBuffer().put(a);
            tensors.add(new HostTensor(n, new long[]{a.length}, HostDType.I64, b));
        });
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(SparseFineTuningFile.FORMAT_KEY, FORMAT);
        meta.put(SparseFineTuningFile.VERSION_KEY, Integer.toString(VERSION));
        meta.put("metadata", JsonFiles.MAPPER.valueToTree(metadata).toString());
        SafeTensors.write(file, tensors, meta);
    }

    public static TrainingStateFile load(Path file) {
        SafeTensors.Contents c = SafeTensors.read(file);
        SparseFineTuningFile.requireFormat(file, c.metadata(), FORMAT, VERSION);
        Map<String, String> meta = SparseFineTuningFile.stringMap(file,
                SparseFineTuningFile.jsonMeta(file, c.metadata(), "metadata"), "metadata");
        Map<String, float[]> floats = new LinkedHashMap<>();
        Map<String, int[]> ints = new LinkedHashMap<>();
        Map<String, long[]> longs = new LinkedHashMap<>();
        for (HostTensor t : c.tensors().values()) {
            if (t.shape().length != 1) {
                throw new ModelFormatException(file, "tensor '" + t.name() + "' is not a vector");
            }
            ByteBuffer b = t.data().duplicate().order(ByteOrder.LITTLE_ENDIAN);
            int n = Math.toIntExact(t.numel());
            switch (t.dtype()) {
                case F32 -> floats.put(t.name(), t.toFloats());
                case I32 -> {
                    int[] a = new int[n];
                    b.asIntBuffer().get(a);
                    ints.put(t.name(), a);
                }
                case I64 -> {
                    long[] a = new long[n];
                    b.asLongBuffer().get(a);
                    longs.put(t.name(), a);
                }
                default -> throw new ModelFormatException(file, "tensor '" + t.name() + "' is " + t.dtype()
                        + "; training state holds F32, I32 and I64 only");
            }
        }
        return new TrainingStateFile(meta, floats, ints, longs);
    }
}
