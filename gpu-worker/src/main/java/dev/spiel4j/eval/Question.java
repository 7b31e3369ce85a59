package dev.spiel4j.eval;

import java.util.List;
import java.util.Objects;

/**
 * One multiple-choice question, ready to score: the model reads {@code context} and each choice is scored as the
 * text that follows it.
 *
 * @param id            where it came from, {@code file:line}
 * @param context       the prompt, e.g. an MMLU question ending in {@code "Answer:"}
 * @param continuations the choices as they follow the context, leading space included (e.g. {@code " A"})
 * @param gold          index of the correct continuation
 */
public record Question(String id, String context, List<String> continuations, int gold) {

    public Question {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(context, "context");
        continuations = List.copyOf(continuations);
        if (continuations.size() < 2) {
            throw new IllegalArgumentException(id + ": a multiple-choice question needs at least 2 choices, got "
                    + continuations.size());
        }
        for (String c : continuations) {
            if (c.isEmpty()) {
                throw new IllegalArgumentException(id + ": empty choice");
            }
        }
        if (gold < 0 || gold >= continuations.size()) {
            throw new IllegalArgumentException(id + ": gold index " + gold + " is not in [0, "
                    + continuations.size() + ")");
        }
    }
}
