package dev.spiel4j.data;

import dev.spiel4j.io.SharedAssets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class TokenizedDataTest {

    @Test
    void loadsAllGsm8kRecords() throws IOException {
        TokenizedData data = TokenizedData.load(SharedAssets.file("data/gsm8k_train.jsonl"),
                new ExampleEncoder(ByteTokenizer.INSTANCE, 4096, ExampleEncoder.Overflow.REJECT));
        assertEquals(7473, data.examples().size());
        assertEquals(List.of(), data.rejected());
        assertEquals("gsm8k_train.jsonl:7473", data.examples().get(7472).id());
    }

    @Test
    void parseAndLengthRejectionsAreCollectedInFileOrder(@TempDir Path dir) throws IOException {
        Path file = Files.writeString(dir.resolve("d.jsonl"), String.join("\n",
                "{\"prompt\":\"p\",\"response\":\"short\"}",
                "{\"prompt\":\"p\",\"response\":\"" + "long".repeat(10) + "\"}",
                "{\"prompt\":\"p\"}",
                "{\"question\":\"q\",\"answer\":\"a\"}"));
        TokenizedData data = TokenizedData.load(file, new ExampleEncoder(ByteTokenizer.INSTANCE, 32,
                ExampleEncoder.Overflow.REJECT));
        assertEquals(List.of("d.jsonl:1", "d.jsonl:4"), data.examples().stream().map(TokenizedExample::id).toList());
        assertEquals(List.of("d.jsonl:2", "d.jsonl:3"), data.rejected().stream().map(Rejected::sourcePosition).toList());
    }
}
