package dev.spiel4j.data;

import java.util.Objects;

/**
 * One training example after parsing: the loss is taken on {@code response} (and the EOS after it) only.
 * Plain text for causal language modelling has an empty prompt, so every token counts.
 *
 * @param id       where the example comes from, e.g. {@code gsm8k_train.jsonl:17} (file and 1-based line)
 * @param prompt   the rendered prompt (template already applied), possibly empty
 * @param response the text the model learns to produce, never empty
 */
public record Example(String id, String prompt, String response) implements Parsed {
    public Example {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(response, "response");
        if (response.isEmpty()) {
            throw new IllegalArgumentException("example " + id + " has an empty response");
        }
    }
}
