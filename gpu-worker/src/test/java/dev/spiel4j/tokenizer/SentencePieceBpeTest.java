package dev.spiel4j.tokenizer;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.io.SharedAssets;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SentencePieceBpeTest {
    private static final String GOLDEN_TEXT = "Once upon a time, there was a little girl named Lily.";
    private static final int[] GOLDEN_IDS = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
    private static Tokenizer fromGguf;
    private static Tokenizer fromModelFile;

    @BeforeAll
    static void load() {
        fromGguf = GgufReader.load(SharedAssets.file("model/stories260K.gguf")).tokenizer();
        fromModelFile = SentencePieceBpe.fromModelFile(SharedAssets.file("model/tok512.model"));
    }

    @Test
    void bothSourcesGiveTheGoldenIds() {
        assertArrayEquals(GOLDEN_IDS, fromGguf.encode(GOLDEN_TEXT));
        assertArrayEquals(GOLDEN_IDS, fromModelFile.encode(GOLDEN_TEXT));
        assertEquals(512, fromModelFile.vocabSize());
        assertEquals(1, fromModelFile.bosId());
        assertEquals(2, fromModelFile.eosId());
    }

    /** The llama2.c reference column of golden/stories260K_hf_reference.txt (an independent encoder). */
    /**
     * tokenizer.json from the GGUF's vocabulary equals the one transformers converted from the same SentencePiece
     * model (the Hugging Face copy's), merges included, and the tokenizers library runs it as this class encodes.
     */
    @Test
    void writesTheTokenizerJsonTransformersMakesAndTheTokenizersLibraryAgrees(@TempDir Path dir) throws IOException {
        ((SentencePieceBpe) fromGguf).writeTokenizerJson(dir.resolve("tokenizer.json"));
        Files.copy(SharedAssets.file("model/stories260K-hf/tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        assertEquals(JsonFiles.readObject(SharedAssets.file("model/stories260K-hf/tokenizer.json")),
                JsonFiles.readObject(dir.resolve("tokenizer.json")));
        HfTokenizer library = HfTokenizer.load(dir);
        // Text that starts with a space is left out: transformers' Metaspace prepends U+2581 only to text that does
        // not start with one, where SentencePiece always adds its dummy prefix (a difference of the conversion
        // itself, which the Hugging Face copy's own tokenizer.json has too).
        for (String text : List.of(GOLDEN_TEXT, "two  spaces and a tab\there", "na\u00efve caf\u00e9 \u2603 \uD83D\uDE00",
                "Lily said, \"Mom!\"\nThe end.")) {
            assertArrayEquals(fromGguf.encode(text), library.encode(text), text);
        }
    }

    @Test
    void edgeCasesMatchTheLlama2cReference() {
        Map<String, int[]> cases = Map.of(
                "", new int[]{},
                " ", new int[]{410, 410},
                " Hello", new int[]{410, 346, 306, 414},
                "  Hello  world  ", new int[]{410, 410, 346, 306, 414, 410, 263, 304, 341, 410, 410},
                "Hello\n\nworld", new int[]{346, 306, 414, 13, 13, 424, 304, 341},
                "\nHello", new int[]{410, 13, 440, 411, 306, 414},
                "caf\u00e9 \ud83d\ude00 \u4e2d\u6587",
                new int[]{280, 412, 431, 485, 410, 243, 162, 155, 131, 410, 231, 187, 176, 233, 153, 138},
                "A 12345 b", new int[]{410, 447, 410, 475, 479, 472, 484, 480, 268},
                "tab\there", new int[]{259, 412, 430, 12, 260, 276},
                "The end. ", new int[]{291, 344, 264, 426, 410});
        cases.forEach((text, ids) -> {
            assertArrayEquals(ids, fromGguf.encode(text), "gguf: '" + text + "'");
            assertArrayEquals(ids, fromModelFile.encode(text), "model file: '" + text + "'");
        });
    }

    @Test
    void roundTripsTextIncludingByteFallback() {
        for (String text : List.of(GOLDEN_TEXT, "  Hello  world  ", "caf\u00e9 \ud83d\ude00 \u4e2d\u6587 \u00fc\u00df",
                "tab\there\n\nnew paragraph", " ", "x")) {
            assertEquals(text, fromGguf.decode(fromGguf.encode(text)), text);
        }
    }

    @Test
    void decodeDropsControlTokensAndStripsThePrefixAfterBos() {
        int[] withSpecials = new int[GOLDEN_IDS.length + 2];
        withSpecials[0] = fromGguf.bosId();
        System.arraycopy(GOLDEN_IDS, 0, withSpecials, 1, GOLDEN_IDS.length);
        withSpecials[withSpecials.length - 1] = fromGguf.eosId();
        assertEquals(GOLDEN_TEXT, fromGguf.decode(withSpecials));
        assertThrows(IllegalArgumentException.class, () -> fromGguf.decode(new int[]{512}));
    }

    @Test
    void openLlamaVocabularyLoadsAndRoundTrips() {
        Tokenizer t = SentencePieceBpe.fromModelFile(SharedAssets.file("tokenizers/open_llama_tokenizer.model"));
        assertEquals(32000, t.vocabSize());
        String text = "The quick brown fox jumps over the lazy dog. Gr\u00fc\u00dfe aus M\u00fcnchen \u2603 \u4f60\u597d";
        int[] ids = t.encode(text);
        assertTrue(ids.length < text.length(), "a 32k vocabulary merges words: " + ids.length);
        assertEquals(text, t.decode(ids));
    }

    @Test
    void encodesLongTextQuickly() throws IOException {
        String text = Files.readString(SharedAssets.file("data/tinystories_valid_head.txt")).substring(0, 200_000);
        long start = System.nanoTime();
        int[] ids = fromGguf.encode(text);
        double seconds = (System.nanoTime() - start) / 1e9;
        assertEquals(text, fromGguf.decode(ids));
        assertTrue(seconds < 5, "200k characters took " + seconds + " s");
    }

    @Test
    void refusesNonBpeAndBrokenModelFiles() throws IOException {
        Path dir = Files.createTempDirectory("spm");
        Path truncated = dir.resolve("truncated.model");
        byte[] real = Files.readAllBytes(SharedAssets.file("model/tok512.model"));
        Files.write(truncated, java.util.Arrays.copyOf(real, real.length / 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SentencePieceBpe.fromModelFile(truncated));
        assertTrue(e.getMessage().contains("truncated.model"), e.getMessage());
        Path unigram = dir.resolve("unigram.model");
        // one piece "a" and a trainer spec with model_type = UNIGRAM (1)
        Files.write(unigram, new byte[]{0x0a, 0x05, 0x0a, 0x01, 'a', 0x18, 0x01, 0x12, 0x02, 0x18, 0x01});
        e = assertThrows(IllegalArgumentException.class, () -> SentencePieceBpe.fromModelFile(unigram));
        assertTrue(e.getMessage().contains("UNIGRAM"), e.getMessage());
    }

    /**
     * The GGUF tokenizer written as {@code tokenizer.model} reads back to the same tokenizer, and, parsed by
     * protobuf-java without a schema, its pieces are byte for byte those of llama2.c's sentencepiece-trained
     * tok512.model (the same vocabulary) and its trainer spec agrees on every field it writes.
     */
    @Test
    void writtenModelFileReadsBackAndMatchesSentencepiecesOwnFile(@TempDir Path tmp) throws IOException {
        SentencePieceBpe gguf = (SentencePieceBpe) fromGguf;
        Path file = tmp.resolve("tokenizer.model");
        gguf.writeModelFile(file);
        SentencePieceBpe back = SentencePieceBpe.fromModelFile(file);
        assertEquals(gguf.vocabSize(), back.vocabSize());
        for (int id = 0; id < gguf.vocabSize(); id++) {
            assertEquals(gguf.piece(id), back.piece(id));
            assertEquals(gguf.score(id), back.score(id));
            assertEquals(gguf.type(id), back.type(id));
        }
        assertEquals(List.of(gguf.unkId(), gguf.bosId(), gguf.eosId()), List.of(back.unkId(), back.bosId(), back.eosId()));
        for (String text : List.of(GOLDEN_TEXT, "  Hello  world  ", "caf\u00e9 \ud83d\ude00", "tab\there\n")) {
            assertArrayEquals(gguf.encode(text), back.encode(text), text);
        }

        UnknownFieldSet ours = UnknownFieldSet.parseFrom(Files.readAllBytes(file));
        UnknownFieldSet original = UnknownFieldSet.parseFrom(Files.readAllBytes(SharedAssets.file("model/tok512.model")));
        assertEquals(original.getField(1).getLengthDelimitedList(), ours.getField(1).getLengthDelimitedList(),
                "pieces (text, score, type) byte-identical to sentencepiece's own serialization");
        UnknownFieldSet trainer = message(ours, 2);
        UnknownFieldSet originalTrainer = message(original, 2);
        for (int field : new int[]{3, 4, 35}) { // model type BPE, vocab size, byte fallback
            assertEquals(originalTrainer.getField(field).getVarintList(), trainer.getField(field).getVarintList(),
                    "trainer spec field " + field);
        }
        // unk/bos/eos ids: the original relies on the proto defaults 0, 1, 2; ours states them
        assertEquals(List.of(0L, 1L, 2L), List.of(trainer.getField(40).getVarintList().get(0),
                trainer.getField(41).getVarintList().get(0), trainer.getField(42).getVarintList().get(0)));
        UnknownFieldSet normalizer = message(ours, 3);
        assertEquals(message(original, 3).getField(1).getLengthDelimitedList(), normalizer.getField(1)
                .getLengthDelimitedList(), "normalizer name 'identity'");
        // dummy prefix and escaped spaces (the defaults), extra whitespace kept, as this encoder does
        assertEquals(List.of(1L), normalizer.getField(3).getVarintList());
        assertEquals(List.of(0L), normalizer.getField(4).getVarintList());
        assertEquals(List.of(1L), normalizer.getField(5).getVarintList());
    }

    private static UnknownFieldSet message(UnknownFieldSet parent, int field) throws IOException {
        List<ByteString> values = parent.getField(field).getLengthDelimitedList();
        assertEquals(1, values.size(), "field " + field + " once");
        return UnknownFieldSet.parseFrom(values.get(0));
    }
}
