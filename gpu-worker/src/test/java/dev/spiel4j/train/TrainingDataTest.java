package dev.spiel4j.train;

import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingDataTest {
    static final Tokenizer TOKENIZER = ModelLoader.load(SharedAssets.file("model/stories260K.gguf")).tokenizer();

    @TempDir
    Path tmp;

    @Test
    void theLastExamplesAreHeldOutAndTooFewAreRefusedNamingTheFile() throws Exception {
        Path three = tmp.resolve("three.jsonl");
        Files.writeString(three, "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"c\", \"response\": \"d\"}\n"
                + "{\"prompt\": \"e\", \"response\": \"f\"}\n");
        TrainingData data = TrainingData.load(three, null, TOKENIZER, 16, 1);
        assertEquals(2, data.train().size());
        assertEquals(1, data.eval().size());
        assertEquals(data.eval().get(0).id(), TrainingData.load(three, null, TOKENIZER, 16, 2).eval().get(1)
                .id(), "the held-out examples are the file's last");
        String m = assertThrows(IllegalArgumentException.class, () -> TrainingData.load(three, null, TOKENIZER, 16, 3))
                .getMessage();
        assertTrue(m.contains(three.toString()) && m.contains("3 usable examples"), m);
        Path missing = tmp.resolve("missing.jsonl");
        m = assertThrows(RuntimeException.class, () -> TrainingData.load(missing, null, TOKENIZER, 16, 1))
                .getMessage();
        assertTrue(m.contains(missing.toString()), m);
    }
}
