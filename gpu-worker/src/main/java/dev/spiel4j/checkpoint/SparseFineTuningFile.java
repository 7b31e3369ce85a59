package dev.spiel4j.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.SafeTensors;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The on-disk form of a {@link SparseFineTuning}: one safetensors file with, per module, {@code <module>.indices}
 * (flat row-major, I32 when the matrix has fewer than 2^31 elements, else I64) and {@code <module>.values} (F32),
 * and string metadata:
 * <ul>
 *   <li>{@code spiel4j.format} = {@code sparse-fine-tuning}, {@code spiel4j.format_version} = {@value #VERSION}</li>
 *   <li>{@code base_fingerprint}, {@code method}</li>
 *   <li>{@code hyperparameters}: a JSON object of strings</li>
 *   <li>{@code modules}: a JSON object, module to {@code [rows, cols]}, in the fine-tuning's order</li>
 * </ul>
 * Loading checks all of it: version, every module's tensors, dtypes, lengths, index range and uniqueness, finite
 * values, and no stray tensors.
 */
public final class SparseFineTuningFile {
    public static final int VERSION = 1;
    public static final String FORMAT_KEY = "spiel4j.format";
    static final String VERSION_KEY = "spiel4j.format_version";
    public static final String FORMAT = "sparse-fine-tuning";

    private SparseFineTuningFile() {
    }

    static void save(SparseFineTuning sft, Path file) {
        List<HostTensor> tensors = new ArrayList<>();
        ObjectNode modules = JsonFiles.MAPPER.createObjectNode();
        for (DeltaTensor d : sft.deltas()) {
            modules.putArray(d.module()).add(d.rows()).add(d.cols());
            tensors.add(indexTensor(d.module() + ".indices", d.indices(), (long) d.rows() * d.cols()));
            tensors.add(floatTensor(d.module() + ".values", d.values()));
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(FORMAT_KEY, FORMAT);
        meta.put(VERSION_KEY, Integer.toString(VERSION));
        meta.put("base_fingerprint", sft.baseFingerprint());
        meta.put("method", sft.method());
        meta.put("hyperparameters", JsonFiles.MAPPER.valueToTree(sft.hyperparameters()).toString());
        meta.put("modules", modules.toString());
        SafeTensors.write(file, tensors, meta);
    }

    /** I32 when every index of a {@code numel}-element matrix fits, else I64. */
    static HostTensor indexTensor(String name, long[] indices, long numel) {
        boolean narrow = numel <= Integer.MAX_VALUE;
        ByteBuffer b = ByteBuffer.allocate(indices.length * (narrow ? 4 : 8)).order(ByteOrder.LITTLE_ENDIAN);
        for (long i : indices) {
            if (narrow) {
                b.putInt((int) i);
            } else {
                b.putLong(i);
            }
        }
        return new HostTensor(name, new long[]{indices.length}, narrow ? HostDType.I32 : HostDType.I64, b.flip());
    }

    static HostTensor floatTensor(String name, float[] values) {
        return floatTensor(name, new long[]{values.length}, values);
    }

    static HostTensor floatTensor(String name, long[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return new HostTensor(name, shape, HostDType.F32, b);
    }

    static long[] longs(HostTensor t) {
        int n = Math.toIntExact(t.numel());
        long[] out = new long[n];
        ByteBuffer b = t.data().duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            out[i] = switch (t.dtype()) {
                case I32 -> b.getInt(4 * i);
                case I64 -> b.getLong(8 * i);
                default -> throw new IllegalStateException(t.name() + " is " + t.dtype() + ", not an integer type");
            };
        }
        return out;
    }

    /** Checks the {@code spiel4j.format} and version metadata of a file this project wrote. */
    static void requireFormat(Path file, Map<String, String> meta, String format, int version) {
        if (!format.equals(meta.get(FORMAT_KEY))) {
            throw new ModelFormatException(file, "metadata '" + FORMAT_KEY + "' is " + meta.get(FORMAT_KEY)
                    + ", expected '" + format + "' (not a spiel4j " + format + " file)");
        }
        String v = meta.get(VERSION_KEY);
        if (!Integer.toString(version).equals(v)) {
            throw new ModelFormatException(file, "format version " + v + " is not supported (this build reads "
                    + version + ")");
        }
    }

    static String requireMeta(Path file, Map<String, String> meta, String key) {
        String v = meta.get(key);
        if (v == null || v.isBlank()) {
            throw new ModelFormatException(file, "metadata '" + key + "' is missing");
        }
        return v;
    }

    static JsonNode jsonMeta(Path file, Map<String, String> meta, String key) {
        try {
            JsonNode n = JsonFiles.MAPPER.readTree(requireMeta(file, meta, key));
            if (!n.isObject()) {
                throw new ModelFormatException(file, "metadata '" + key + "' is not a JSON object");
            }
            return n;
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(file, "metadata '" + key + "' is not valid JSON: " + e.getOriginalMessage());
        }
    }

    static Map<String, String> stringMap(Path file, JsonNode node, String what) {
        Map<String, String> out = new LinkedHashMap<>();
        node.fields().forEachRemaining(e -> {
            if (!e.getValue().isTextual()) {
                throw new ModelFormatException(file, what + " entry '" + e.getKey() + "' is not a string");
            }
            out.put(e.getKey(), e.getValue().asText());
        });
        return out;
    }

    static SparseFineTuning load(Path file) {
        SafeTensors.Contents c = SafeTensors.read(file);
        Map<String, String> meta = c.metadata();
        requireFormat(file, meta, FORMAT, VERSION);
        String base = requireMeta(file, meta, "base_fingerprint");
        String method = requireMeta(file, meta, "method");
        Map<String, String> hp = stringMap(file, jsonMeta(file, meta, "hyperparameters"), "hyperparameters");
        JsonNode modules = jsonMeta(file, meta, "modules");
        List<DeltaTensor> deltas = new ArrayList<>();
        Set<String> used = new HashSet<>();
        for (var it = modules.fields(); it.hasNext(); ) {
            var e = it.next();
            String module = e.getKey();
            int[] shape = shape(file, module, e.getValue());
            HostTensor idxT = c.require(module + ".indices");
            HostTensor valT = c.require(module + ".values");
            used.add(idxT.name());
            used.add(valT.name());
            deltas.add(delta(file, module, shape, idxT, valT));
        }
        for (String name : c.tensors().keySet()) {
            if (!used.contains(name)) {
                throw new ModelFormatException(file, "tensor '" + name + "' belongs to no module listed in metadata");
            }
        }
        return new SparseFineTuning(base, method, hp, deltas);
    }

    private static int[] shape(Path file, String module, JsonNode node) {
        if (!node.isArray() || node.size() != 2 || !node.get(0).canConvertToInt() || !node.get(1).canConvertToInt()
                || node.get(0).asInt() <= 0 || node.get(1).asInt() <= 0) {
            throw new ModelFormatException(file, "module '" + module + "': shape " + node
                    + " is not [rows, cols] of positive integers");
        }
        return new int[]{node.get(0).asInt(), node.get(1).asInt()};
    }

    private static DeltaTensor delta(Path file, String module, int[] shape, HostTensor idxT, HostTensor valT) {
        String where = "module '" + module + "': ";
        if (idxT.dtype() != HostDType.I32 && idxT.dtype() != HostDType.I64) {
            throw new ModelFormatException(file, where + "indices are " + idxT.dtype() + ", expected I32 or I64");
        }
        if (valT.dtype() != HostDType.F32) {
            throw new ModelFormatException(file, where + "values are " + valT.dtype() + ", expected F32");
        }
        if (idxT.shape().length != 1 || !Arrays.equals(idxT.shape(), valT.shape())) {
            throw new ModelFormatException(file, where + "indices " + Arrays.toString(idxT.shape()) + " and values "
                    + Arrays.toString(valT.shape()) + " must be vectors of one length");
        }
        long numel = (long) shape[0] * shape[1];
        long[] idx = longs(idxT);
        for (long i : idx) {
            if (i < 0 || i >= numel) {
                throw new ModelFormatException(file, where + "index " + i + " is outside the [" + shape[0] + ", "
                        + shape[1] + "] matrix");
            }
        }
        long dup = SparseFineTuning.firstDuplicate(idx);
        if (dup >= 0) {
            throw new ModelFormatException(file, where + "index " + dup + " appears twice");
        }
        float[] val = valT.toFloats();
        for (int j = 0; j < val.length; j++) {
            if (!Float.isFinite(val[j])) {
                throw new ModelFormatException(file, where + "value " + j + " is " + val[j]);
            }
        }
        return new DeltaTensor(module, shape[0], shape[1], idx, val);
    }
}
