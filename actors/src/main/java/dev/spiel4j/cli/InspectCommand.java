package dev.spiel4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.checkpoint.SftExport;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.checkpoint.SparseFineTuningSummary;
import dev.spiel4j.checkpoint.TrainingStateFile;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.SafeTensors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code inspect}: what a checkpoint holds. Recognises, by the {@code spiel4j.format} metadata the checkpoint
 * package writes, a sparse fine-tuning file ({@link SparseFineTuningSummary}) and a training-state file (its
 * metadata and arrays), and an exported adapter directory ({@link SftExport#ADAPTER_CONFIG}: deltas per module,
 * checked against the weights file).
 */
@Command(name = "inspect", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Show what a sparse fine-tuning, training-state file or exported adapter holds.")
final class InspectCommand extends CliCommand {
    /** Values of the {@code spiel4j.format} metadata key, as documented in the checkpoint package's file formats. */
    private static final String SPARSE_FINE_TUNING = "sparse-fine-tuning";
    private static final String TRAINING_STATE = "training-state";

    @Parameters(paramLabel = "FILE", description = "A .safetensors checkpoint or an exported adapter directory.")
    Path file;

    @Override
    Result run() {
        requireExisting(file, "FILE", true);
        Path adapterConfig = Files.isDirectory(file) ? file.resolve(SftExport.ADAPTER_CONFIG)
                : file.resolveSibling(SftExport.ADAPTER_CONFIG);
        if (Files.isDirectory(file) || file.getFileName().toString().equals(SftExport.ADAPTER_WEIGHTS)) {
            if (!Files.isRegularFile(adapterConfig)) {
                throw usage("FILE: " + file + " is no exported adapter (no " + adapterConfig + ")");
            }
            return adapter(adapterConfig);
        }
        SafeTensors.Contents contents = SafeTensors.read(file);
        String format = contents.metadata().getOrDefault("spiel4j.format", "");
        return switch (format) {
            case SPARSE_FINE_TUNING -> sparseFineTuning();
            case TRAINING_STATE -> trainingState(contents);
            default -> throw new ModelFormatException(file, "is a safetensors file but no spiel4j checkpoint"
                    + " (metadata spiel4j.format is '" + format + "')");
        };
    }

    private Result sparseFineTuning() {
        SparseFineTuningSummary summary = SparseFineTuning.load(file).inspect();
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

    /** An exported adapter: its config's per-module counts, each checked against the stored values. */
    private Result adapter(Path configFile) {
        ObjectNode config = JsonFiles.readObject(configFile);
        Path weights = configFile.resolveSibling(SftExport.ADAPTER_WEIGHTS);
        SafeTensors.Contents contents = SafeTensors.read(weights);
        JsonNode numDeltas = config.path("num_deltas");
        if (!numDeltas.isObject()) {
            throw new ModelFormatException(configFile, "has no num_deltas object");
        }
        StringBuilder text = new StringBuilder("exported adapter: peft_type " + config.path("peft_type").asText()
                + ", " + config.path("num_tunable_weights").asLong() + " deltas\n");
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
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("kind", "peft-adapter");
        json.put("peft_type", config.path("peft_type").asText());
        json.put("num_tunable_weights", config.path("num_tunable_weights").asLong());
        json.put("num_deltas", modules);
        json.put("spiel4j", JsonFiles.MAPPER.convertValue(config.path("spiel4j"), Map.class));
        return new Result(text.toString(), json);
    }
}
