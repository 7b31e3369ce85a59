package dev.spiel4j.io;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates the offline assets (models, data, golden values) that live beside the repository, never inside it:
 * the system property {@code spiel4j.assets}, then the environment variable {@code SPIEL4J_ASSETS}, then
 * {@code ../shared/assets} relative to the working directory or its parent (a module directory during tests).
 */
public final class SharedAssets {
    private SharedAssets() {
    }

    public static Path root() {
        String configured = System.getProperty("spiel4j.assets", System.getenv("SPIEL4J_ASSETS"));
        if (configured != null && !configured.isBlank()) {
            return Path.of(configured).toAbsolutePath().normalize();
        }
        Path cwd = Path.of("").toAbsolutePath();
        for (Path dir = cwd; dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("../shared/assets").normalize();
            if (Files.isDirectory(candidate)) {
                return candidate;
            }
        }
        return cwd.resolve("../shared/assets").normalize();
    }

    /** A file under the assets root; fails with a message naming the file and how to point at the assets. */
    public static Path file(String relative) {
        Path p = root().resolve(relative);
        if (!Files.exists(p)) {
            throw new IllegalStateException("asset not found: " + p + " (set -Dspiel4j.assets=DIR or SPIEL4J_ASSETS"
                    + " to the folder that holds model/, data/, eval/ and golden/)");
        }
        return p;
    }
}
