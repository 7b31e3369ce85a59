package dev.spiel4j.model;

import dev.spiel4j.io.HostTensor;
import dev.spiel4j.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.util.Map;

/**
 * A model file read and validated on the host: its config, its tensors under canonical names
 * ({@link dev.spiel4j.model.ModuleNames}), its tokenizer and a fingerprint that identifies the base weights
 * (checkpoints record it and refuse to apply to another base).
 */
public record LoadedModel(Path source, LlamaConfig config, Map<String, HostTensor> tensors, Tokenizer tokenizer,
                          String fingerprint) {
    public LoadedModel {
        tensors = Map.copyOf(tensors);
    }
}
