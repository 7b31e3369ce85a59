package dev.spiel4j.peft;

import dev.spiel4j.io.HostTensor;

import java.util.Collections;
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
}
