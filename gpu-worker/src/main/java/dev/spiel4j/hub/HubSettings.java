package dev.spiel4j.hub;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;

/**
 * Where the Hub is, who asks, whether to ask at all, and where the files go: read from the environment variables
 * huggingface_hub reads, so that Python tools and spiel4j share one cache and one login.
 * <ul>
 *   <li>{@code HF_ENDPOINT}: the Hub's address (default {@code https://huggingface.co}).</li>
 *   <li>{@code HF_TOKEN} (or the older {@code HUGGING_FACE_HUB_TOKEN}), else the file {@code HF_TOKEN_PATH}
 *       (default {@code HF_HOME/token}, where {@code hf auth login} stores it): sent as a bearer token to the
 *       endpoint only, never to the CDN a download is redirected to.</li>
 *   <li>{@code HF_HUB_OFFLINE} (or {@code TRANSFORMERS_OFFLINE}) = {@code 1}/{@code true}/{@code yes}/{@code on}:
 *       no request at all; locations resolve from the cache or fail naming what is missing.</li>
 *   <li>{@code HF_HUB_CACHE} (or the older {@code HUGGINGFACE_HUB_CACHE}), else {@code HF_HOME/hub}, with
 *       {@code HF_HOME} defaulting to {@code $XDG_CACHE_HOME/huggingface} or {@code ~/.cache/huggingface}.</li>
 * </ul>
 * The system properties {@code spiel4j.hf.endpoint}, {@code spiel4j.hf.cache} and {@code spiel4j.hf.offline}
 * override the first, third and fourth (a JVM cannot change its own environment, so tests and embedding programs
 * set these; {@code SPIEL4J_JAVA_OPTS=-Dspiel4j.hf.offline=true} works for the launcher too).
 */
public record HubSettings(URI endpoint, Optional<String> token, boolean offline, Path cache) {
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";
    public static final String ENDPOINT_PROPERTY = "spiel4j.hf.endpoint";
    public static final String CACHE_PROPERTY = "spiel4j.hf.cache";
    public static final String OFFLINE_PROPERTY = "spiel4j.hf.offline";

    /** huggingface_hub's {@code _is_true}. */
    private static final Set<String> TRUE = Set.of("1", "ON", "YES", "TRUE");

    public HubSettings {
        endpoint = URI.create(endpoint.toString().replaceAll("/+$", ""));
    }

    /** This process's environment variables and system properties. */
    public static HubSettings fromEnvironment() {
        return from(System.getenv(), System.getProperties());
    }

    /** As {@link #fromEnvironment()} but from the given variables and properties. */
    public static HubSettings from(Map<String, String> env, Properties properties) {
        String endpoint = properties.getProperty(ENDPOINT_PROPERTY,
                first(env, "HF_ENDPOINT").orElse(DEFAULT_ENDPOINT));
        Path home = first(env, "HF_HOME").map(Path::of).orElseGet(() -> first(env, "XDG_CACHE_HOME").map(Path::of)
                .orElseGet(() -> Path.of(System.getProperty("user.home"), ".cache")).resolve("huggingface"));
        String cache = properties.getProperty(CACHE_PROPERTY, first(env, "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
                .orElse(home.resolve("hub").toString()));
        String offline = properties.getProperty(OFFLINE_PROPERTY,
                first(env, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE").orElse(""));
        Optional<String> token = first(env, "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN").map(String::strip)
                .or(() -> storedToken(first(env, "HF_TOKEN_PATH").map(Path::of).orElse(home.resolve("token"))));
        return new HubSettings(URI.create(endpoint), token.filter(t -> !t.isEmpty()),
                TRUE.contains(offline.strip().toUpperCase(Locale.ROOT)), Path.of(cache));
    }

    /** The first of the variables that is set and not empty. */
    private static Optional<String> first(Map<String, String> env, String... names) {
        for (String name : names) {
            String value = env.get(name);
            if (value != null && !value.isEmpty()) {
                return Optional.of(value);
            }
        }
        return Optional.empty();
    }

    private static Optional<String> storedToken(Path file) {
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        try {
            return Optional.of(Files.readString(file).strip());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the Hub token file " + file + ": " + e.getMessage(), e);
        }
    }

    /** Never shows the token. */
    @Override
    public String toString() {
        return "HubSettings[endpoint=" + endpoint + ", token=" + (token.isPresent() ? "(set)" : "(none)")
                + ", offline=" + offline + ", cache=" + cache + "]";
    }
}
