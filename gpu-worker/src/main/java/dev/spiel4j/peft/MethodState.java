package dev.spiel4j.peft;

import dev.spiel4j.io.HostTensor;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/**
 * Everything a fine-tuning method needs to resume training exactly: its name, the last completed update step and
 * its trainable values and optimizer/selector state as named host tensors (a checkpoint writer stores them as-is).
 */
public record MethodState(String method, int step, Map<String, HostTensor> tensors) {
    public MethodState {
        // sorted by name, not Map.copyOf: its iteration order changes from JVM to JVM, and a checkpoint written
        // from this map would differ byte for byte between two runs with identical state
        tensors = Collections.unmodifiableMap(new TreeMap<>(tensors));
    }

    /** The tensor {@code name}, or a clear error naming what is missing. */
    public HostTensor require(String name) {
        HostTensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(method + " state has no tensor '" + name + "'");
        }
        return t;
    }

    /**
     * SHA-256 over the step and every tensor's name, shape, type and bytes in name order: equal for two replicas
     * exactly when their states are equal bit for bit (data-parallel workers compare it every few steps).
     */
    public String digest() {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update((method + "@" + step).getBytes(StandardCharsets.UTF_8));
            for (HostTensor t : tensors.values()) {
                sha.update((t.name() + Arrays.toString(t.shape()) + t.dtype()).getBytes(StandardCharsets.UTF_8));
                sha.update(t.data().duplicate().rewind());
            }
            return HexFormat.of().formatHex(sha.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);
        }
    }
}
