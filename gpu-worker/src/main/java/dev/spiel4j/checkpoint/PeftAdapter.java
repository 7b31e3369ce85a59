package dev.spiel4j.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.io.AtomicFiles;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.model.RopeLayout;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A LoRA or (IA)3 adapter in PEFT's layout, which {@code PeftModel.from_pretrained} loads:
 * {@code adapter_model.safetensors} with {@code base_model.model.<module>.lora_A.weight} ({@code [r, in]}) and
 * {@code .lora_B.weight} ({@code [out, r]}), or {@code base_model.model.<module>.ia3_l} ({@code [out, 1]} for the key
 * and value projections, {@code [1, in]} for {@code down_proj}, a feed-forward module), beside an
 * {@code adapter_config.json}. Names and q/k rows are Hugging Face's; a GGUF base's rows (interleaved) are mapped both
 * ways. Held here in the base's layout, by spiel4j's tensor names ({@code <module>.lora_A.weight}, {@code <module>.ia3_l}).
 *
 * @param kind            LoRA or (IA)3
 * @param rank            LoRA's r (0 for (IA)3)
 * @param alpha           LoRA's scaling numerator: the update is {@code alpha / r * B A} (0 for (IA)3)
 * @param baseFingerprint the base model it was trained on
 * @param tensors         the trained tensors in the base's layout
 */
public record PeftAdapter(Kind kind, int rank, float alpha, String baseFingerprint, Map<String, HostTensor> tensors)
        implements FineTuning {
    private static final String PREFIX = "base_model.model.";
    private static final String LORA_A = ".lora_A.weight";
    private static final String LORA_B = ".lora_B.weight";
    private static final String IA3 = ".ia3_l";
    private static final String DOWN_PROJ = ".mlp.down_proj";

    public enum Kind { LORA, IA3 }

    public PeftAdapter {
        tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    }

    /** Whether {@code dirOrFile} is a LoRA or (IA)3 adapter directory, or the weights file inside one. */
    public static boolean isAdapter(Path dirOrFile) {
        Path config = Files.isDirectory(dirOrFile) ? dirOrFile.resolve(SftExport.ADAPTER_CONFIG)
                : dirOrFile.getFileName().toString().equals(SftExport.ADAPTER_WEIGHTS)
                ? dirOrFile.resolveSibling(SftExport.ADAPTER_CONFIG) : null;
        if (config == null || !Files.isRegularFile(config)) {
            return false;
        }
        String type = JsonFiles.readObject(config).path("peft_type").asText("");
        return type.equals("LORA") || type.equals("IA3");
    }

    /**
     * Writes the adapter into {@code dir} (created if needed).
     *
     * @param baseModelNameOrPath the base's Hub id or path, as {@code base_model_name_or_path}
     */
    public void write(LlamaConfig base, String baseModelNameOrPath, Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir, e);
        }
        List<HostTensor> out = new ArrayList<>();
        Set<String> targets = new LinkedHashSet<>();
        for (HostTensor t : new TreeMap<>(tensors).values()) {
            String module = module(t.name());
            targets.add(module.substring(module.lastIndexOf('.') + 1));
            float[] values = permutedRows(base, module, t, true);
            long[] shape = kind == Kind.IA3 ? ia3Shape(module, t.numel()) : t.shape();
            out.add(SparseFineTuningFile.floatTensor(PREFIX + t.name(), shape, values));
        }
        SafeTensors.write(dir.resolve(SftExport.ADAPTER_WEIGHTS), out, Map.of("format", "pt"));
        ObjectNode config = JsonFiles.MAPPER.createObjectNode();
        config.put("peft_type", kind.name());
        config.put("task_type", "CAUSAL_LM");
        config.put("base_model_name_or_path", baseModelNameOrPath);
        config.put("inference_mode", true);
        targets.forEach(config.putArray("target_modules")::add);
        config.put("fan_in_fan_out", false);
        if (kind == Kind.LORA) {
            config.put("r", rank);
            config.put("lora_alpha", alpha);
            config.put("lora_dropout", 0.0);
            config.put("bias", "none");
        } else {
            config.putArray("feedforward_modules").add(DOWN_PROJ.substring(DOWN_PROJ.lastIndexOf('.') + 1));
        }
        config.putObject("spiel4j").put("base_fingerprint", baseFingerprint);
        AtomicFiles.writeString(dir.resolve(SftExport.ADAPTER_CONFIG), config.toPrettyString());
    }

    /**
     * The adapter at {@code dirOrFile} (its directory, or the weights file in it) for {@code base}: every tensor must
     * belong to one of the base's matrices, with the shape its kind gives it.
     *
     * @throws ModelFormatException naming the file and the tensor or field at fault
     * @throws IllegalStateException when spiel4j wrote the adapter for another base
     */
    public static PeftAdapter read(Path dirOrFile, LoadedModel base) {
        Path dir = Files.isDirectory(dirOrFile) ? dirOrFile : dirOrFile.toAbsolutePath().getParent();
        Path configFile = dir.resolve(SftExport.ADAPTER_CONFIG);
        JsonNode config = JsonFiles.readObject(configFile);
        Kind kind;
        try {
            kind = Kind.valueOf(config.path("peft_type").asText(""));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configFile, "peft_type is '" + config.path("peft_type").asText()
                    + "', not LORA or IA3");
        }
        String fingerprint = config.path("spiel4j").path("base_fingerprint").asText(base.fingerprint());
        if (!fingerprint.equals(base.fingerprint())) {
            throw new IllegalStateException(dir + " was trained on base model " + fingerprint + " but the loaded model is "
                    + base.fingerprint() + "; it does not apply to other weights");
        }
        int rank = config.path("r").asInt(0);
        float alpha = (float) config.path("lora_alpha").asDouble(0);
        if (kind == Kind.LORA && (rank < 1 || !(alpha > 0))) {
            throw new ModelFormatException(configFile, "a LoRA adapter needs r >= 1 and lora_alpha > 0, got r=" + rank
                    + " lora_alpha=" + alpha);
        }
        // PEFT's variants that change the update's arithmetic, which this reader does not implement
        for (String variant : new String[]{"use_dora", "use_rslora"}) {
            if (config.path(variant).asBoolean(false)) {
                throw new ModelFormatException(configFile, variant + " is true: only plain LoRA is supported");
            }
        }
        for (String pattern : new String[]{"rank_pattern", "alpha_pattern"}) {
            if (config.path(pattern).size() > 0) {
                throw new ModelFormatException(configFile, pattern + " is set: only one rank and alpha for every"
                        + " module are supported");
            }
        }
        Path weights = dir.resolve(SftExport.ADAPTER_WEIGHTS);
        SafeTensors.refusePyTorchPickle(weights);
        SafeTensors.Contents contents = SafeTensors.read(weights);
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        for (HostTensor t : contents.tensors().values()) {
            if (!t.name().startsWith(PREFIX) || !(t.name().endsWith(LORA_A) || t.name().endsWith(LORA_B)
                    || t.name().endsWith(IA3))) {
                throw new ModelFormatException(weights, "tensor '" + t.name() + "' is no " + kind + " tensor ("
                        + PREFIX + "<module>" + (kind == Kind.LORA ? LORA_A + " or " + LORA_B : IA3) + ")");
            }
            String name = t.name().substring(PREFIX.length());
            String module = module(name);
            HostTensor weight = base.tensors().get(module + ".weight");
            if (weight == null || weight.shape().length != 2) {
                throw new ModelFormatException(weights, "module '" + module + "' is no weight matrix of the base");
            }
            long rows = weight.shape()[0];
            long cols = weight.shape()[1];
            long[] shape = name.endsWith(LORA_A) ? new long[]{rank, cols} : name.endsWith(LORA_B)
                    ? new long[]{rows, rank} : new long[]{module.endsWith(DOWN_PROJ) ? cols : rows};
            if (HostTensor.numel(shape) != t.numel()) {
                throw new ModelFormatException(weights, "tensor '" + t.name() + "' has shape "
                        + Arrays.toString(t.shape()) + "; " + module + " needs "
                        + Arrays.toString(shape));
            }
            HostTensor inBase = SparseFineTuningFile.floatTensor(name, shape, t.toFloats());
            tensors.put(name, SparseFineTuningFile.floatTensor(name, shape,
                    permutedRows(base.config(), module, inBase, false)));
        }
        if (tensors.isEmpty()) {
            throw new ModelFormatException(weights, "holds no adapter tensors");
        }
        return new PeftAdapter(kind, rank, alpha, base.fingerprint(), tensors);
    }

    /**
     * LoRA: {@code W += alpha / r * B A}; (IA)3: the key and value projections' rows, and {@code down_proj}'s
     * columns, scaled by the learned vector.
     */
    @Override
    public void mergeInto(Map<String, NDArray> weights) {
        for (HostTensor t : tensors.values()) {
            if (!t.name().endsWith(LORA_B)) {
                weight(weights, module(t.name())); // every weight checked before any changes
            }
        }
        for (HostTensor t : tensors.values()) {
            String module = module(t.name());
            NDArray w = weight(weights, module);
            try (NDManager scope = w.getManager().newSubManager()) {
                if (kind == Kind.LORA) {
                    if (!t.name().endsWith(LORA_A)) {
                        continue;
                    }
                    float[] a = t.toFloats();
                    float scale = alpha / rank;
                    for (int i = 0; i < a.length; i++) {
                        a[i] *= scale;
                    }
                    NDArray b = EngineArrays.of(scope, tensors.get(module + LORA_B).toFloats(),
                            new Shape(tensors.get(module + LORA_B).shape()));
                    NDArray update = b.matMul(EngineArrays.of(scope, a, new Shape(t.shape())));
                    w.addi(update.toType(w.getDataType(), false));
                } else {
                    long n = t.numel();
                    Shape broadcast = module.endsWith(DOWN_PROJ) ? new Shape(1, n) : new Shape(n, 1);
                    w.muli(EngineArrays.of(scope, t.toFloats(), broadcast).toType(w.getDataType(), false));
                }
            }
        }
    }

    @Override
    public void requireFits(Map<String, HostTensor> base, String fingerprint) {
        if (!baseFingerprint.equals(fingerprint)) {
            throw new IllegalStateException("this adapter was trained on base model " + baseFingerprint
                    + " but the loaded model is " + fingerprint + "; it does not apply to other weights");
        }
        for (HostTensor t : tensors.values()) {
            HostTensor w = base.get(module(t.name()) + ".weight");
            if (w == null || w.shape().length != 2) {
                throw new IllegalArgumentException("base has no weight matrix '" + module(t.name()) + ".weight'");
            }
        }
    }

    /** As {@link #mergeInto}, on the host: LoRA adds {@code alpha / r * B A}, (IA)3 scales rows or columns. */
    @Override
    public float[] mergedOnHost(HostTensor weight) {
        float[] w = weight.toFloats();
        String module = weight.name().replaceFirst("\\.weight$", "");
        if (weight.shape().length != 2) {
            return w; // norms: no adapter tensor touches them
        }
        int cols = Math.toIntExact(weight.shape()[1]);
        int rows = w.length / cols;
        if (kind == Kind.LORA && tensors.containsKey(module + LORA_A)) {
            float[] a = tensors.get(module + LORA_A).toFloats();
            float[] b = tensors.get(module + LORA_B).toFloats();
            float scale = alpha / rank;
            for (int i = 0; i < rows; i++) {
                for (int k = 0; k < rank; k++) {
                    float bik = scale * b[i * rank + k];
                    for (int j = 0; j < cols; j++) {
                        w[i * cols + j] += bik * a[k * cols + j];
                    }
                }
            }
        } else if (kind == Kind.IA3 && tensors.containsKey(module + IA3)) {
            float[] l = tensors.get(module + IA3).toFloats();
            boolean input = module.endsWith(DOWN_PROJ);
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    w[i * cols + j] *= input ? l[j] : l[i];
                }
            }
        }
        return w;
    }

    private static NDArray weight(Map<String, NDArray> weights, String module) {
        NDArray w = weights.get(module + ".weight");
        if (w == null) {
            throw new IllegalArgumentException("no weight '" + module + ".weight' to merge the adapter into");
        }
        return w;
    }

    /** The module of a tensor name: {@code model.layers.0.self_attn.q_proj} of {@code ...q_proj.lora_A.weight}. */
    private static String module(String name) {
        for (String suffix : new String[]{LORA_A, LORA_B, IA3}) {
            if (name.endsWith(suffix)) {
                return name.substring(0, name.length() - suffix.length());
            }
        }
        throw new IllegalArgumentException("'" + name + "' is no adapter tensor name");
    }

    /** PEFT's (IA)3 vector shape: {@code [1, in]} scales a feed-forward module's input, {@code [out, 1]} an output. */
    private static long[] ia3Shape(String module, long n) {
        return module.endsWith(DOWN_PROJ) ? new long[]{1, n} : new long[]{n, 1};
    }

    /**
     * The tensor's values with the rows of a q/k output dimension moved between a GGUF base's interleaved layout and
     * Hugging Face's ({@code toHf}: GGUF to HF): LoRA's B rows and (IA)3's q/k vectors; everything else unchanged.
     */
    private static float[] permutedRows(LlamaConfig base, String module, HostTensor t, boolean toHf) {
        float[] in = t.toFloats();
        boolean qk = module.endsWith(".self_attn.q_proj") || module.endsWith(".self_attn.k_proj");
        if (base.ropeLayout() != RopeLayout.INTERLEAVED || !qk || t.name().endsWith(LORA_A)) {
            return in;
        }
        int rows = Math.toIntExact(t.shape()[0]);
        int width = in.length / rows;
        float[] out = new float[in.length];
        for (int r = 0; r < rows; r++) {
            int to = toHf ? SftExport.rotateHalfRow(r, base.headDim()) : SftImport.interleavedRow(r, base.headDim());
            System.arraycopy(in, r * width, out, to * width, width);
        }
        return out;
    }
}
