package dev.spiel4j.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.model.RopeLayout;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Reads a sparse fine-tuning saved in the released implementation's adapter layout (the paper's PEFT fork, or
 * {@link SftExport#writePeftAdapter}): {@code adapter_model.safetensors} with, per module,
 * {@code base_model.model.<module>.sft_delta.indices} (int32 or int64, in any order) and {@code .values} (float32,
 * float16 or bfloat16), beside an optional {@code adapter_config.json}. Module names and row order are Hugging Face's;
 * on a base whose q and k rows are interleaved (GGUF) the rows are mapped back, the inverse of the export.
 *
 * <p>An adapter carries no base fingerprint unless spiel4j wrote it ({@code spiel4j.base_fingerprint} in its config,
 * then checked). A fork adapter is checked against the base it is read for as far as the file allows: every module
 * must be one of the base's matrices and every index inside it; two deltas at one index are refused. It then counts as
 * a fine-tuning of that base.
 */
public final class SftImport {
    private static final String PREFIX = "base_model.model.";
    private static final String INDICES = ".sft_delta.indices";
    private static final String VALUES = ".sft_delta.values";

    private SftImport() {
    }

    /**
     * The adapter weights {@code path} names: a directory holding {@link SftExport#ADAPTER_CONFIG} stands for its
     * {@link SftExport#ADAPTER_WEIGHTS}; a file is itself. Null when a directory is no adapter.
     */
    public static Path weightsOf(Path path) {
        if (!Files.isDirectory(path)) {
            return path;
        }
        return Files.isRegularFile(path.resolve(SftExport.ADAPTER_CONFIG)) ? path.resolve(SftExport.ADAPTER_WEIGHTS)
                : null;
    }

    /**
     * The sparse fine-tuning at {@code path} for {@code base}: an SFT adapter (directory or weights file) read
     * against it, or a spiel4j fine-tuning file, refused unless trained on it.
     *
     * @throws IllegalStateException when the fine-tuning was trained on another base
     */
    public static SparseFineTuning readFor(Path path, LoadedModel base) {
        Path file = weightsOf(path);
        if (file != null && isPeftAdapter(file)) {
            return readPeftAdapter(file, base);
        }
        SparseFineTuning sft = SparseFineTuning.load(path);
        sft.requireBase(base.fingerprint());
        return sft;
    }

    /** Whether {@code file} is a safetensors file in the adapter layout rather than a spiel4j fine-tuning file. */
    public static boolean isPeftAdapter(Path file) {
        if (!Files.isRegularFile(file)) {
            return false;
        }
        SafeTensors.Contents c = SafeTensors.read(file);
        return !c.metadata().containsKey(SparseFineTuningFile.FORMAT_KEY)
                && c.tensors().keySet().stream().anyMatch(k -> k.endsWith(INDICES));
    }

    /**
     * The adapter at {@code path} (a directory or its weights file) as a sparse fine-tuning of {@code base}.
     *
     * @throws ModelFormatException naming the file and the tensor or field at fault
     * @throws IllegalStateException when spiel4j wrote the adapter for another base
     */
    public static SparseFineTuning readPeftAdapter(Path path, LoadedModel base) {
        Path weights = weightsOf(path);
        if (weights == null) {
            throw new IllegalArgumentException(path + " has no " + SftExport.ADAPTER_CONFIG + ": not an adapter");
        }
        SafeTensors.refusePyTorchPickle(weights);
        Path configFile = weights.resolveSibling(SftExport.ADAPTER_CONFIG);
        ObjectNode config = Files.isRegularFile(configFile) ? JsonFiles.readObject(configFile)
                : JsonFiles.MAPPER.createObjectNode();
        String peftType = config.path("peft_type").asText("SFT");
        if (!peftType.equals("SFT")) {
            throw new ModelFormatException(configFile, "peft_type is " + peftType + ", not SFT: the adapter holds no"
                    + " sparse deltas");
        }
        JsonNode provenance = config.path("spiel4j");
        String fingerprint = provenance.path("base_fingerprint").asText(base.fingerprint());
        if (!fingerprint.equals(base.fingerprint())) {
            throw new IllegalStateException(weights + " was exported from a fine-tuning of base model " + fingerprint
                    + " but the loaded model is " + base.fingerprint() + "; its indices do not apply to other weights");
        }
        SafeTensors.Contents contents = SafeTensors.read(weights);
        List<DeltaTensor> deltas = new ArrayList<>();
        for (String key : contents.tensors().keySet()) {
            if (key.endsWith(INDICES)) {
                deltas.add(delta(contents, key, base.config(), base.tensors()));
            }
        }
        if (deltas.isEmpty()) {
            throw new ModelFormatException(weights, "no tensor named " + PREFIX + "<module>" + INDICES);
        }
        deltas.sort(Comparator.comparing(DeltaTensor::module));
        Map<String, String> hyperparameters = new LinkedHashMap<>();
        provenance.path("hyperparameters").fields().forEachRemaining(e -> hyperparameters.put(e.getKey(),
                e.getValue().asText()));
        hyperparameters.putIfAbsent("imported_from", weights.toString());
        if (config.has("base_model_name_or_path")) {
            hyperparameters.putIfAbsent("base_model_name_or_path", config.get("base_model_name_or_path").asText());
        }
        return new SparseFineTuning(base.fingerprint(), provenance.path("method").asText("peft-sft"), hyperparameters,
                deltas);
    }

    private static DeltaTensor delta(SafeTensors.Contents contents, String indicesKey, LlamaConfig config,
                                     Map<String, HostTensor> baseTensors) {
        Path file = contents.file();
        if (!indicesKey.startsWith(PREFIX)) {
            throw new ModelFormatException(file, "tensor '" + indicesKey + "' does not start with " + PREFIX);
        }
        String module = indicesKey.substring(PREFIX.length(), indicesKey.length() - INDICES.length());
        HostTensor weight = baseTensors.get(module + ".weight");
        if (weight == null || weight.shape().length != 2) {
            throw new ModelFormatException(file, "module '" + module + "' is no weight matrix of the base model");
        }
        int rows = Math.toIntExact(weight.shape()[0]);
        int cols = Math.toIntExact(weight.shape()[1]);
        long[] indices = indices(file, contents.require(indicesKey));
        HostTensor valueTensor = contents.require(PREFIX + module + VALUES);
        if (valueTensor.dtype() != HostDType.F32 && valueTensor.dtype() != HostDType.F16
                && valueTensor.dtype() != HostDType.BF16) {
            throw new ModelFormatException(file, "tensor '" + valueTensor.name() + "' is " + valueTensor.dtype()
                    + "; values are F32, F16 or BF16");
        }
        float[] values = valueTensor.toFloats();
        if (indices.length != values.length) {
            throw new ModelFormatException(file, module + ": " + indices.length + " indices but " + values.length
                    + " values");
        }
        boolean interleaved = config.ropeLayout() == RopeLayout.INTERLEAVED
                && (module.endsWith(".self_attn.q_proj") || module.endsWith(".self_attn.k_proj"));
        for (int j = 0; j < indices.length; j++) {
            if (indices[j] < 0 || indices[j] >= (long) rows * cols) {
                throw new ModelFormatException(file, module + ": index " + indices[j] + " is outside its [" + rows
                        + ", " + cols + "] weight");
            }
            if (interleaved) {
                long row = indices[j] / cols;
                indices[j] = interleavedRow((int) row, config.headDim()) * (long) cols + indices[j] % cols;
            }
        }
        int[] order = IntStream.range(0, indices.length).boxed()
                .sorted(Comparator.comparingLong(j -> indices[j])).mapToInt(Integer::intValue).toArray();
        long[] sortedIndices = new long[order.length];
        float[] sortedValues = new float[order.length];
        for (int j = 0; j < order.length; j++) {
            sortedIndices[j] = indices[order[j]];
            sortedValues[j] = values[order[j]];
            if (j > 0 && sortedIndices[j] == sortedIndices[j - 1]) {
                throw new ModelFormatException(file, module + ": index " + sortedIndices[j] + " holds two deltas");
            }
        }
        return new DeltaTensor(module, rows, cols, sortedIndices, sortedValues);
    }

    private static long[] indices(Path file, HostTensor t) {
        try {
            return SparseFineTuningFile.longs(t);
        } catch (IllegalStateException e) {
            throw new ModelFormatException(file, e.getMessage() + "; indices are I32 or I64");
        }
    }

    /** The interleaved (GGUF) row of a q or k weight whose rotate-half (Hugging Face) row is {@code row}. */
    static int interleavedRow(int row, int headDim) {
        int head = row / headDim;
        int j = row % headDim;
        int half = headDim / 2;
        return head * headDim + (j < half ? 2 * j : 2 * (j - half) + 1);
    }
}
