package dev.spiel4j.cli;

import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.loader.ModelLoader;
import picocli.CommandLine;
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
        requireExists(location, mixee.commandLine());
    }

    /** Reads and validates the model (tensors on the host, tokenizer, fingerprint). */
    LoadedModel load() {
        return load(location, mixee.commandLine());
    }

    /** {@link #requireExists()} for a command whose {@code --model} is optional. */
    static void requireExists(String location, CommandLine commandLine) {
        if (HubInputs.isHub(location)) {
            HubInputs.check(location, "--model", commandLine);
        } else if (!Files.exists(Path.of(location))) {
            throw new ParameterException(commandLine, "--model: no such file or directory: " + location);
        }
    }

    /** {@link #load()} for a command whose {@code --model} is optional. */
    static LoadedModel load(String location, CommandLine commandLine) {
        requireExists(location, commandLine);
        return ModelLoader.load(HubInputs.resolve(location, "--model", commandLine));
    }
}
