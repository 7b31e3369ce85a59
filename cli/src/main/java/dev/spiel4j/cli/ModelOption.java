package dev.spiel4j.cli;

import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.loader.ModelLoader;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;

/** {@code --model PATH}: a GGUF file or a Hugging Face checkpoint directory, read on the host. */
final class ModelOption {
    @Spec(Spec.Target.MIXEE)
    private CommandSpec mixee;

    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "Base model: a GGUF file or a Hugging Face checkpoint directory.")
    private Path path;

    Path path() {
        return path;
    }

    /** Fails with a usage error (exit 2) when the path does not exist; call before any other expensive work. */
    void requireExists() {
        if (!Files.exists(path)) {
            throw new ParameterException(mixee.commandLine(), "--model: no such file or directory: " + path);
        }
    }

    /** Reads and validates the model (tensors on the host, tokenizer, fingerprint). */
    LoadedModel load() {
        requireExists();
        return ModelLoader.load(path);
    }
}
