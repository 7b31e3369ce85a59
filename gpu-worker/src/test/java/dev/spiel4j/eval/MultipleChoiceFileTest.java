package dev.spiel4j.eval;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MultipleChoiceFileTest {
    @TempDir
    Path dir;

    @Test
    void readsBothShapesWithTheirPrompts() throws IOException {
        Path file = dir.resolve("mixed.jsonl");
        Files.writeString(file, """
                {"subject": "s", "input": "Q?\\nA. x\\nB. y\\nC. z\\nD. w\\nAnswer:", "output": " D"}

                {"query": "Question: Which?", "choices": ["one", "two", "three"], "gold": 2}
                {"query": "Question: not read", "choices": ["a", "b"], "gold": 0}
                """);
        List<Question> questions = MultipleChoiceFile.read(file, 2);
        assertEquals(2, questions.size());
        assertEquals(new Question("mixed.jsonl:1", "Q?\nA. x\nB. y\nC. z\nD. w\nAnswer:",
                List.of(" A", " B", " C", " D"), 3), questions.get(0));
        assertEquals(new Question("mixed.jsonl:3", "Question: Which?\nAnswer:", List.of(" one", " two", " three"), 2),
                questions.get(1));
        assertEquals(3, MultipleChoiceFile.read(file, 0).size());
    }

    private void assertRefused(String line, String expected) throws IOException {
        Path file = dir.resolve("bad.jsonl");
        Files.writeString(file, "{\"query\": \"Question: ok\", \"choices\": [\"a\", \"b\"], \"gold\": 1}\n" + line + "\n");
        var e = assertThrows(IllegalArgumentException.class, () -> MultipleChoiceFile.read(file, 0));
        assertTrue(e.getMessage().startsWith("bad.jsonl:2: ") && e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void malformedRecordsNameFileLineAndProblem() throws IOException {
        assertRefused("{\"query\": \"Q\", \"choices\": [\"a\"", "not valid JSON");
        assertRefused("[1, 2]", "not a JSON object");
        assertRefused("{\"question\": \"Q\"}", "neither an MMLU record");
        assertRefused("{\"subject\": \"s\", \"input\": \"Q Answer:\", \"output\": \"E\"}", "'output' must be one of");
        assertRefused("{\"subject\": \"s\", \"input\": \"\", \"output\": \"A\"}", "'input' must be a non-empty string");
        assertRefused("{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 2}", "'gold' must be an index in [0, 2)");
        assertRefused("{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": \"1\"}", "'gold' must be an index");
        assertRefused("{\"query\": \"Q\", \"choices\": [\"a\", 3], \"gold\": 0}", "choice 1 must be a non-empty string");
        assertRefused("{\"query\": \"Q\", \"choices\": \"a\", \"gold\": 0}", "'choices' must be an array");
    }

    @Test
    void refusesMissingFileAndInvalidUtf8() throws IOException {
        var missing = assertThrows(IllegalArgumentException.class,
                () -> MultipleChoiceFile.read(dir.resolve("none.jsonl"), 0));
        assertTrue(missing.getMessage().contains("none.jsonl not found"), missing.getMessage());
        Path file = Files.write(dir.resolve("latin1.jsonl"), new byte[]{'{', '"', (byte) 0xE9, '"', '}', '\n'});
        var e = assertThrows(IllegalArgumentException.class, () -> MultipleChoiceFile.read(file, 0));
        assertTrue(e.getMessage().contains("not valid UTF-8"), e.getMessage());
    }
}
