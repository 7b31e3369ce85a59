package dev.spiel4j.cli;

import dev.spiel4j.checkpoint.FineTuning;
import dev.spiel4j.checkpoint.PeftAdapter;
import dev.spiel4j.checkpoint.SftExport;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.model.LoadedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code export}: a sparse fine-tuning for Python users, in the Hugging Face layout: {@code peft} writes the
 * released SpIEL implementation's adapter ({@code adapter_model.safetensors} + {@code adapter_config.json}),
 * {@code merged} the base with the deltas added ({@code model.safetensors} + {@code config.json}).
 */
@Command(name = "export", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Export a sparse fine-tuning as a PEFT-style SFT adapter or as merged HF weights.")
final class ExportCommand extends CliCommand {

    /** Output layouts. */
    enum Format { peft, merged }

    @Option(names = "--sft", required = true, paramLabel = "PATH", description = {
            "The sparse fine-tuning to export.", SftFiles.PATH_HELP})
    Path sft;

    @Mixin
    ModelOption model;

    @Option(names = "--format", required = true, paramLabel = "FORMAT",
            description = "${COMPLETION-CANDIDATES}.")
    Format format;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Directory to write (created).")
    Path out;

    @Override
    Result run() throws IOException {
        Path sftFile = requireSft(sft);
        model.requireExists();
        LoadedModel base = model.load();
        FineTuning tuning = SftFiles.loadAnyFor(List.of(sftFile), base).get(0);
        String baseName = base.source().toAbsolutePath().normalize().toString();
        switch (format) {
            case peft -> {
                if (tuning instanceof PeftAdapter adapter) {
                    adapter.write(base.config(), baseName, out);
                } else {
                    SftExport.writePeftAdapter((SparseFineTuning) tuning, base.config(), baseName, out);
                }
            }
            case merged -> SftExport.writeMergedModel(tuning, base, out);
        }
        List<String> files;
        try (Stream<Path> s = Files.list(out)) {
            files = s.map(p -> p.getFileName().toString()).sorted().toList();
        }
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("format", format.name());
        json.put("out", out.toString());
        json.put("files", files);
        return new Result("wrote " + format + " export to " + out + ": " + String.join(", ", files), json);
    }
}
