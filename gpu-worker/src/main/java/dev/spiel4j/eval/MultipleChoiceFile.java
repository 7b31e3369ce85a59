package dev.spiel4j.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.io.JsonFiles;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads multiple-choice JSON-lines files into {@link Question}s. Two record shapes are accepted, told apart by
 * their fields (a file may even mix them):
 * <ul>
 *   <li>MMLU, {@code {"subject", "input", "output"}}: {@code input} is the whole prompt ending in
 *       {@code "Answer:"}, {@code output} the gold letter. The choices are the letters {@code " A" .. " D"}
 *       (with the space that follows the colon), so the model is asked which letter comes next.</li>
 *   <li>ARC, {@code {"query", "choices", "gold"}}: {@code query} is {@code "Question: ..."}, {@code choices} the
 *       answer texts and {@code gold} the 0-based index of the right one. As in lm-evaluation-harness's
 *       {@code arc_easy} task the context is {@code query + "\nAnswer:"} and each choice {@code " " + text}.</li>
 * </ul>
 * Blank lines are skipped. A malformed record fails the whole read with an {@link IllegalArgumentException} that
 * names {@code file:line} and the problem: an evaluation silently skipping records would report a number over an
 * unknown subset.
 */
public final class MultipleChoiceFile {
    private static final List<String> LETTERS = List.of("A", "B", "C", "D");

    private MultipleChoiceFile() {
    }

    /**
     * The first {@code limit} questions of {@code file} ({@code limit <= 0}: all of them).
     *
     * @throws IllegalArgumentException for a missing file, invalid UTF-8 or a malformed record, naming file:line
     */
    public static List<Question> read(Path file, int limit) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("multiple-choice file " + file + " not found");
        }
        String name = file.getFileName().toString();
        List<Question> out = new ArrayList<>();
        var decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        try (BufferedReader in = new BufferedReader(new java.io.InputStreamReader(Files.newInputStream(file),
                decoder))) {
            int lineNo = 0;
            String line;
            while ((limit <= 0 || out.size() < limit) && (line = in.readLine()) != null) {
                lineNo++;
                if (!line.isBlank()) {
                    out.add(parse(name + ":" + lineNo, line));
                }
            }
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(file + ": not valid UTF-8 after record " + out.size(), e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        return out;
    }

    /** One JSON line as a question; {@code where} is {@code file:line} for error messages. */
    static Question parse(String where, String line) {
        JsonNode node = JsonFiles.objectLine(where, line);
        if (node.has("choices")) {
            return arc(where, node);
        }
        if (node.has("input")) {
            return mmlu(where, node);
        }
        throw new IllegalArgumentException(where + ": neither an MMLU record {subject, input, output} nor an ARC "
                + "record {query, choices, gold}");
    }

    private static Question mmlu(String where, JsonNode node) {
        String input = text(where, node, "input");
        String output = text(where, node, "output").strip();
        int gold = LETTERS.indexOf(output);
        if (gold < 0) {
            throw new IllegalArgumentException(where + ": field 'output' must be one of " + LETTERS + ", got '"
                    + output + "'");
        }
        return new Question(where, input, LETTERS.stream().map(l -> " " + l).toList(), gold);
    }

    private static Question arc(String where, JsonNode node) {
        String query = text(where, node, "query");
        JsonNode choices = node.get("choices");
        if (!choices.isArray() || choices.size() < 2) {
            throw new IllegalArgumentException(where + ": field 'choices' must be an array of at least 2 strings");
        }
        List<String> continuations = new ArrayList<>();
        for (int i = 0; i < choices.size(); i++) {
            JsonNode c = choices.get(i);
            if (!c.isTextual() || c.asText().isBlank()) {
                throw new IllegalArgumentException(where + ": choice " + i + " must be a non-empty string");
            }
            continuations.add(" " + c.asText());
        }
        JsonNode gold = node.get("gold");
        if (gold == null || !gold.isIntegralNumber() || gold.asInt() < 0 || gold.asInt() >= choices.size()) {
            throw new IllegalArgumentException(where + ": field 'gold' must be an index in [0, " + choices.size()
                    + "), got " + gold);
        }
        return new Question(where, query + "\nAnswer:", continuations, gold.asInt());
    }

    private static String text(String where, JsonNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null || !value.isTextual() || value.asText().isBlank()) {
            throw new IllegalArgumentException(where + ": field '" + field + "' must be a non-empty string");
        }
        return value.asText();
    }
}
