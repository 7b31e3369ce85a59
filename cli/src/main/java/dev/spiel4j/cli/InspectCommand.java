package dev.spiel4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.checkpoint.SparseFineTuningFile;
import dev.spiel4j.checkpoint.PeftAdapter;
import dev.spiel4j.checkpoint.SftExport;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.checkpoint.SparseFineTuningSummary;
import dev.spiel4j.checkpoint.TrainingStateFile;
import dev.spiel4j.loader.HfCheckpoint;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.service.CheckpointStore;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.Optional;

/**
 * {@code inspect}: what a checkpoint holds. Recognises, by the {@code spiel4j.format} metadata the checkpoint
 * package writes, a sparse fine-tuning file ({@link SparseFineTuningSummary}) and a training-state file (its
 * metadata and arrays), a training checkpoint directory (its sparse fine-tuning file, {@link SftFiles#checkpointIn}),
 * an exported adapter directory ({@link SftExport#ADAPTER_CONFIG}: deltas per module,
 * checked against the weights file), and a base model (GGUF file or Hugging Face directory: its config and the
 * fingerprint its fine-tunings must carry).
 */
@Command(name = "inspect", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Show what a sparse fine-tuning, training-state file, checkpoint directory, exported adapter or"
                + " model holds.")
final class InspectCommand extends CliCommand {
    private static final String SPARSE_FINE_TUNING = SparseFineTuningFile.FORMAT;
    private static final String TRAINING_STATE = TrainingStateFile.FORMAT;
    /** Config records as JSON with the snake_case keys of every other field the CLI prints. */
    private static final ObjectMapper SNAKE_CASE =
            new ObjectMapper().setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);

    @Parameters(paramLabel = "FILE", description = {
            "A .safetensors checkpoint, a training checkpoint directory (runs/<id>/checkpoints/step-NNNNNN, or a run"
                    + " directory for its newest), an exported adapter directory, a GGUF file or an HF directory.",
            HubInputs.HELP})
    String location;

    /** {@link #location} as a local path (an {@code hf://} location's copy in the Hub cache). */
    private Path file;

    @Override
    Result run() {
        file = requireExisting(HubInputs.resolve(location, "FILE", spec.commandLine()), "FILE", true);
        boolean directory = Files.isDirectory(file);
        Path dir = directory ? file : file.toAbsolutePath().getParent();
        Path adapterConfig = dir.resolve(SftExport.ADAPTER_CONFIG);
        if ((directory || file.getFileName().toString().equals(SftExport.ADAPTER_WEIGHTS))
                && Files.isRegularFile(adapterConfig)) {
            return adapter(adapterConfig);
        }
        if (directory) {
            Optional<Path> checkpoint;
            try {
                checkpoint = SftFiles.checkpointIn(file, line -> progress("inspect: " + line));
            } catch (IllegalArgumentException e) {
                throw usage("FILE: " + e.getMessage());
            }
            if (checkpoint.isPresent()) {
                return sparseFineTuning(checkpoint.get());
            }
            if (!Files.isRegularFile(file.resolve(HfCheckpoint.CONFIG))) {
                throw usage("FILE: " + file + " is a directory without " + CheckpointStore.DELTA_FILE
                        + " (a checkpoint), " + SftExport.ADAPTER_CONFIG + " (an exported adapter) or "
                        + HfCheckpoint.CONFIG + " (a Hugging Face model)");
            }
            return model(); // the loader says what else is wrong
        }
        if (!isSafetensors(file)) {
            SafeTensors.refusePyTorchPickle(file); // e.g. the fork's adapter_model.bin
            return model(); // a GGUF file; the loader says what is wrong otherwise
        }
        SafeTensors.Contents contents = SafeTensors.read(file);
        String format = contents.metadata().getOrDefault(SparseFineTuningFile.FORMAT_KEY, "");
        return switch (format) {
            case SPARSE_FINE_TUNING -> sparseFineTuning(file);
            case TRAINING_STATE -> trainingState(contents);
            default -> {
                if (Files.isRegularFile(dir.resolve(HfCheckpoint.CONFIG))) {
                    yield model();
                }
                throw new ModelFormatException(file, "is a safetensors file but no spiel4j checkpoint (metadata"
                        + " spiel4j.format is '" + format + "') and no model weights (no config.json beside it)");
            }
        };
    }

    /** By content, not name: checkpoints are {@code delta.sft}, {@code state.bin}, {@code *.safetensors}... */
    private static boolean isSafetensors(Path file) {
        try (var in = Files.newInputStream(file)) {
            byte[] head = in.readNBytes(9);
            if (head.length < 9) {
                return false;
            }
            long headerLength = java.nio.ByteBuffer.wrap(head, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
            return headerLength > 0 && headerLength <= Files.size(file) - 8 && head[8] == '{';
        } catch (java.io.IOException e) {
            return false;
        }
    }

    /** A base model: its config and the fingerprint that fine-tunings of it record. */
    private Result model() {
        LoadedModel m = ModelLoader.load(file);
        long parameters = m.tensors().values().stream().mapToLong(HostTensor::numel).sum();
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("kind", "model");
        json.put("source", m.source().toString());
        json.put("fingerprint", m.fingerprint());
        json.put("parameters", parameters);
        json.put("config", SNAKE_CASE.convertValue(m.config(), Map.class));
        String text = "model " + m.source() + "\n  fingerprint " + m.fingerprint() + "\n  " + parameters
                + " parameters in " + m.tensors().size() + " tensors\n  " + m.config() + "\n";
        return new Result(text, json);
    }

    /** Its summary, and on stderr why it holds no deltas if it holds none (a LoRA run's checkpoint, say). */
    private Result sparseFineTuning(Path sftFile) {
        SparseFineTuning sft = SparseFineTuning.load(sftFile);
        if (sft.numDeltas() == 0) {
            progress("inspect: warning: " + SftFiles.withoutDeltas(sftFile, sft));
        }
        SparseFineTuningSummary summary = sft.inspect();
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("kind", SPARSE_FINE_TUNING);
        json.putAll(summary.toMap());
        return new Result(summary.text(), json);
    }

    private Result trainingState(SafeTensors.Contents contents) {
        TrainingStateFile state = TrainingStateFile.load(file);
        StringBuilder text = new StringBuilder("training state: " + contents.tensors().size() + " arrays\n");
        state.metadata().forEach((k, v) -> text.append("  ").append(k).append(" = ").append(v).append('\n'));
        List<Map<String, Object>> arrays = new ArrayList<>();
        for (HostTensor t : contents.tensors().values()) {
            text.append(String.format(Locale.ROOT, "  %-48s %-4s %d%n", t.name(), t.dtype(), t.numel()));
            arrays.add(Map.of("name", t.name(), "dtype", t.dtype().name(), "length", t.numel()));
        }
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("kind", TRAINING_STATE);
        json.put("metadata", state.metadata());
        json.put("arrays", arrays);
        return new Result(text.toString(), json);
    }

    /**
     * An exported adapter: its config's per-module counts, each checked against the stored values, and their total:
     * the deltas the file holds. The fork's {@code num_tunable_weights} is its budget, which can exceed what it
     * stored (3000 against 2985 in one of its adapters), so it is shown as the config's figure, not as the count.
     */
    private Result adapter(Path configFile) {
        ObjectNode config = JsonFiles.readObject(configFile);
        Path weights = configFile.resolveSibling(SftExport.ADAPTER_WEIGHTS);
        SafeTensors.Contents contents = SafeTensors.read(weights);
        if (PeftAdapter.isAdapter(configFile.getParent())) {
            return denseAdapter(config, contents);
        }
        JsonNode numDeltas = config.path("num_deltas");
        if (!numDeltas.isObject()) {
            throw new ModelFormatException(configFile, "has no num_deltas object");
        }
        StringBuilder text = new StringBuilder();
        Map<String, Object> modules = new LinkedHashMap<>();
        numDeltas.fields().forEachRemaining(e -> {
            String key = "base_model.model." + e.getKey() + ".sft_delta.values";
            HostTensor values = contents.tensors().get(key);
            if (values == null || values.numel() != e.getValue().asLong()) {
                throw new ModelFormatException(weights, "tensor '" + key + "' should hold " + e.getValue().asLong()
                        + " values (num_deltas in " + configFile.getFileName() + ") but "
                        + (values == null ? "is missing" : "holds " + values.numel()));
            }
            modules.put(e.getKey(), e.getValue().asLong());
            text.append(String.format(Locale.ROOT, "  %-48s %d%n", e.getKey(), e.getValue().asLong()));
        });
        long stored = modules.values().stream().mapToLong(n -> (Long) n).sum();
        text.insert(0, "exported adapter: peft_type " + config.path("peft_type").asText() + ", " + stored
                + " deltas (num_tunable_weights " + config.path("num_tunable_weights").asLong() + ")\n");
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("kind", "peft-adapter");
        json.put("peft_type", config.path("peft_type").asText());
        json.put("deltas", stored);
        json.put("num_tunable_weights", config.path("num_tunable_weights").asLong());
        json.put("num_deltas", modules);
        json.put("spiel4j", JsonFiles.MAPPER.convertValue(config.path("spiel4j"), Map.class));
        return new Result(text.toString(), json);
    }

    /** A LoRA or (IA)3 adapter: its trained parameters per module (what a LoRA or (IA)3 run's checkpoint holds). */
    private static Result denseAdapter(ObjectNode config, SafeTensors.Contents contents) {
        Map<String, Long> modules = new TreeMap<>();
        for (HostTensor t : contents.tensors().values()) {
            String module = t.name().replaceFirst("^base_model\\.model\\.", "")
                    .replaceFirst("\\.(lora_A\\.weight|lora_B\\.weight|ia3_l)$", "");
            modules.merge(module, t.numel(), Long::sum);
        }
        long total = modules.values().stream().mapToLong(Long::longValue).sum();
        String type = config.path("peft_type").asText();
        StringBuilder text = new StringBuilder("adapter: peft_type " + type
                + (type.equals("LORA") ? ", r " + config.path("r").asInt() + ", lora_alpha "
                + config.path("lora_alpha").asDouble() : "") + ", " + total + " parameters in " + modules.size()
                + " modules\n");
        modules.forEach((m, n) -> text.append(String.format(Locale.ROOT, "  %-48s %d%n", m, n)));
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("kind", "peft-adapter");
        json.put("peft_type", type);
        json.put("parameters", total);
        json.put("modules", modules);
        json.put("spiel4j", JsonFiles.MAPPER.convertValue(config.path("spiel4j"), Map.class));
        return new Result(text.toString(), json);
    }
}
