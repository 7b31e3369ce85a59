package dev.spiel4j.loader;

import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.ModelFormatException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens a model from a GGUF file or a Hugging Face checkpoint directory, whichever the path is. */
public final class ModelLoader {
    private ModelLoader() {
    }

    public static LoadedModel load(Path path) {
        if (Files.isDirectory(path)) {
            return HfCheckpoint.load(path);
        }
        if (!Files.isRegularFile(path)) {
            throw new ModelFormatException(path, "no such model file or directory");
        }
        if (path.getFileName().toString().endsWith(".safetensors") && Files.exists(path.resolveSibling("config.json"))) {
            return HfCheckpoint.load(path.toAbsolutePath().getParent());
        }
        if (startsWithGgufMagic(path)) {
            return GgufReader.load(path);
        }
        throw new ModelFormatException(path, "neither a GGUF file (magic 'GGUF') nor a Hugging Face checkpoint"
                + " directory (config.json + model.safetensors)");
    }

    private static boolean startsWithGgufMagic(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            return magic.length == 4 && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F';
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage());
        }
    }
}
