package dev.spiel4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.spiel4j.io.SharedAssets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ExampleFileReaderTest {

    static List<RawRecord<ReadPosition>> readAll(Path file, ReadPosition from) throws IOException {
        List<RawRecord<ReadPosition>> out = new ArrayList<>();
        try (ExampleFileReader r = ExampleFileReader.open(file, from)) {
            r.forEachRemaining(out::add);
        }
        return out;
    }

    private static String text(RawRecord<?> r) {
        return new String(r.bytes(), StandardCharsets.UTF_8);
    }

    @Test
    void jsonLinesRecordsAreTheFilesLines() throws IOException {
        Path file = SharedAssets.file("data/gsm8k_train.jsonl");
        List<String> lines = Files.readAllLines(file);
        List<RawRecord<ReadPosition>> records = readAll(file, ReadPosition.START);
        assertEquals(7473, records.size());
        for (int i = 0; i < lines.size(); i++) {
            assertEquals(lines.get(i), text(records.get(i)));
            assertEquals("gsm8k_train.jsonl:" + (i + 1), records.get(i).sourceId());
        }
        assertEquals(Files.size(file), records.get(records.size() - 1).next().byteOffset());
    }

    @Test
    void jsonArrayRecordsAreTheArrayElements() throws IOException {
        Path file = SharedAssets.file("data/alpaca_en_demo_1k.json");
        ObjectMapper mapper = new ObjectMapper();
        JsonNode all = mapper.readTree(file.toFile());
        List<RawRecord<ReadPosition>> records = readAll(file, ReadPosition.START);
        assertEquals(999, records.size());
        assertEquals(all.size(), records.size());
        for (int i = 0; i < records.size(); i++) {
            assertEquals(all.get(i), mapper.readTree(records.get(i).bytes()));
            assertEquals("alpaca_en_demo_1k.json#" + i, records.get(i).sourceId());
        }
    }

    @Test
    void textRecordsAreBlankLineSeparatedParagraphs() throws IOException {
        Path file = SharedAssets.file("data/tinystories_train_head.txt");
        List<String> paragraphs = Arrays.stream(Files.readString(file).split("\n\\s*\n"))
                .map(String::strip).filter(s -> !s.isEmpty()).collect(Collectors.toList());
        List<RawRecord<ReadPosition>> records = readAll(file, ReadPosition.START);
        assertEquals(paragraphs.size(), records.size());
        for (int i = 0; i < records.size(); i++) {
            assertEquals(paragraphs.get(i), text(records.get(i)).strip());
        }
        assertEquals("tinystories_train_head.txt:1", records.get(0).sourceId());
        assertEquals("tinystories_train_head.txt:3", records.get(1).sourceId());
    }

    @ParameterizedTest
    @ValueSource(strings = {"data/tinystories_valid_head.txt", "data/dolly_hhrlhf_train_small_1k.jsonl",
            "data/alpaca_en_demo_1k.json"})
    void resumingFromAnyHandedOutPositionGivesExactlyTheRemainingRecords(String asset) throws IOException {
        Path file = SharedAssets.file(asset);
        List<RawRecord<ReadPosition>> all = readAll(file, ReadPosition.START);
        for (int k : new int[]{1, 2, 17, all.size() / 2, all.size() - 1, all.size()}) {
            List<RawRecord<ReadPosition>> rest = readAll(file, all.get(k - 1).next());
            assertEquals(all.size() - k, rest.size(), "records after " + k);
            for (int i = 0; i < rest.size(); i++) {
                RawRecord<ReadPosition> expected = all.get(k + i);
                assertEquals(expected.sourceId(), rest.get(i).sourceId());
                assertArrayEquals(expected.bytes(), rest.get(i).bytes());
                assertEquals(expected.next(), rest.get(i).next());
            }
            if (k < all.size()) {
                assertEquals(all.get(k).sourceId(), readAll(file, all.get(k).at()).get(0).sourceId());
            }
        }
    }

    @Test
    void positionTracksTheNextUnreadRecord() throws IOException {
        Path file = SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl");
        try (ExampleFileReader r = ExampleFileReader.open(file)) {
            assertEquals(ReadPosition.START, r.position());
            RawRecord<ReadPosition> first = r.next();
            assertEquals(first.next(), r.position());
            assertTrue(r.hasNext());
            assertEquals(first.next(), r.position(), "peeking does not move the position");
        }
    }

    @Test
    void blankLinesCrlfAndBadLinesInJsonLines(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("mixed.jsonl");
        byte[] good = "{\"prompt\":\"a\",\"response\":\"b\"}".getBytes(StandardCharsets.UTF_8);
        try (var out = Files.newOutputStream(file)) {
            out.write(good);
            out.write("\r\n\n   \n{broken\n".getBytes(StandardCharsets.UTF_8));
            out.write(new byte[]{'{', '"', (byte) 0xFE, '"', '}', '\n'});
            out.write(good); // no final newline
        }
        List<RawRecord<ReadPosition>> records = readAll(file, ReadPosition.START);
        assertEquals(List.of("mixed.jsonl:1", "mixed.jsonl:4", "mixed.jsonl:5", "mixed.jsonl:6"),
                records.stream().map(RawRecord::sourceId).toList());
        List<Parsed> parsed = records.stream().map(r -> ExampleParser.JSON.decode(r.sourceId(), r.bytes())).toList();
        assertInstanceOf(Example.class, parsed.get(0));
        assertTrue(assertInstanceOf(Rejected.class, parsed.get(1)).reason().startsWith("malformed JSON"));
        assertEquals("invalid UTF-8 at byte 2 of the record", assertInstanceOf(Rejected.class, parsed.get(2)).reason());
        assertInstanceOf(Example.class, parsed.get(3));
        assertEquals(Files.size(file), records.get(3).next().byteOffset());
    }

    @Test
    void brokenJsonArrayFailsNamingTheFileAfterTheGoodRecords(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("broken.json");
        Files.writeString(file, "[{\"prompt\":\"a\",\"response\":\"b\"},\n {\"prompt\": oops}]");
        try (ExampleFileReader r = ExampleFileReader.open(file)) {
            assertEquals("broken.json#0", r.next().sourceId());
            UncheckedIOException e = assertThrows(UncheckedIOException.class, r::hasNext);
            assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("line 2"), e.getMessage());
        }
        Path notArray = dir.resolve("object.json");
        Files.writeString(notArray, "{\"prompt\":\"a\"}");
        assertThrows(IllegalArgumentException.class, () -> ExampleFileReader.open(notArray));
    }

    @Test
    void impossiblePositionsAndUnknownFilesAreRefused(@TempDir Path dir) throws IOException {
        Path file = SharedAssets.file("data/gsm8k_train.jsonl");
        long size = Files.size(file);
        var past = assertThrows(IllegalArgumentException.class,
                () -> ExampleFileReader.open(file, new ReadPosition(0, size + 1, 0)));
        assertTrue(past.getMessage().contains("has only " + size + " bytes"), past.getMessage());
        var mid = assertThrows(IllegalArgumentException.class,
                () -> ExampleFileReader.open(file, new ReadPosition(0, 5, 0)));
        assertTrue(mid.getMessage().contains("not the start of a line"), mid.getMessage());
        Path alpaca = SharedAssets.file("data/alpaca_en_demo_1k.json");
        assertThrows(IllegalArgumentException.class, () -> ExampleFileReader.open(alpaca, new ReadPosition(1000, 0, 0)));
        Path csv = Files.writeString(dir.resolve("data.csv"), "a,b");
        var unknown = assertThrows(IllegalArgumentException.class, () -> ExampleFileReader.open(csv));
        assertTrue(unknown.getMessage().contains("data.csv"));
        assertThrows(IllegalArgumentException.class, () -> ExampleFileReader.open(dir.resolve("missing.jsonl")));
    }
}
