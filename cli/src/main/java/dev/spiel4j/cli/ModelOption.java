package dev.spiel4j.cli;

import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.loader.ModelLoader;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code --model}: a GGUF file or a Hugging Face checkpoint directory, read on the host; or an {@code hf://}
 * location, downloaded into the Hub cache when the model is loaded.
 */
final class ModelOption {
    @Spec(Spec.Target.MIXEE)
    private CommandSpec mixee;

    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = {"Base model: a GGUF file or a Hugging Face checkpoint directory.", HubInputs.HELP})
    private String location;

    /**
     * Fails with a usage error (exit 2) when a local path does not exist or an {@code hf://} location is malformed;
     * call before any other expensive work (a download is the loading's, not this check's).
     */
    void requireExists() {
        if (HubInputs.isHub(location)) {
            HubInputs.check(location, "--model", mixee.commandLine());
        } else if (!Files.exists(Path.of(location))) {
            throw new ParameterException(mixee.commandLine(), "--model: no such file or directory: " + location);
        }
    }

    /** Reads and validates the model (tensors on the host, tokenizer, fingerprint). */
    LoadedModel load() {
        requireExists();
        return ModelLoader.load(HubInputs.resolve(location, "--model", mixee.commandLine()));
    }
}
