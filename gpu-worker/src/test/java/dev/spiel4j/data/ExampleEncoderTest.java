package dev.spiel4j.data;

import dev.spiel4j.io.SharedAssets;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ExampleEncoderTest {
    private static final ByteTokenizer TOK = ByteTokenizer.INSTANCE;

    private static TokenizedExample single(ExampleEncoder encoder, Example e) {
        List<Encoded> out = encoder.encode(e);
        assertEquals(1, out.size());
        return assertInstanceOf(TokenizedExample.class, out.get(0));
    }

    @Test
    void sequenceIsBosPromptResponseEos() {
        TokenizedExample t = single(new ExampleEncoder(TOK, 64, ExampleEncoder.Overflow.REJECT), new Example("x", "ab", "cde"));
        assertArrayEquals(new int[]{1, 'a' + 3, 'b' + 3, 'c' + 3, 'd' + 3, 'e' + 3, 2}, t.tokens());
        assertEquals(3, t.responseStart());
        assertEquals(4, t.lossTokens());
        assertEquals("x", t.id());
    }

    /** The mask-alignment contract on every record of the real files: targets under the mask = response + EOS. */
    @Test
    void targetsUnderTheLossMaskAreExactlyTheResponseAndEos() throws IOException {
        ExampleEncoder encoder = new ExampleEncoder(TOK, 1 << 16, ExampleEncoder.Overflow.REJECT);
        int checked = 0;
        for (String asset : List.of("data/alpaca_en_demo_1k.json", "data/dolly_hhrlhf_train_small_1k.jsonl",
                "data/gsm8k_train.jsonl", "data/tinystories_train_head.txt")) {
            Path file = SharedAssets.file(asset);
            List<Example> examples = new ArrayList<>();
            try (ExampleFileReader r = ExampleFileReader.open(file)) {
                while (r.hasNext() && examples.size() < 300) {
                    RawRecord<ReadPosition> raw = r.next();
                    examples.add(assertInstanceOf(Example.class, r.decoder().decode(raw.sourceId(), raw.bytes())));
                }
            }
            List<TokenizedExample> tokenized = examples.stream().map(e -> single(encoder, e)).toList();
            for (int from = 0; from < tokenized.size(); from += 7) {
                List<TokenizedExample> group = tokenized.subList(from, Math.min(tokenized.size(), from + 7));
                Batch b = Batches.pad(group, 0);
                for (int row = 0; row < b.size(); row++) {
                    Example e = examples.get(from + row);
                    List<Integer> masked = new ArrayList<>();
                    List<Integer> unmaskedRealInputs = new ArrayList<>();
                    for (int t = 0; t < b.seqLen(); t++) {
                        int i = row * b.seqLen() + t;
                        if (b.lossMask()[i] > 0) {
                            masked.add((int) b.targets()[i]);
                        } else if (b.attentionMask()[i] > 0) {
                            unmaskedRealInputs.add((int) b.targets()[i]);
                        }
                    }
                    assertEquals(2, masked.get(masked.size() - 1), "last masked target is EOS");
                    int[] response = masked.subList(0, masked.size() - 1).stream().mapToInt(Integer::intValue).toArray();
                    assertEquals(e.response(), TOK.decode(response), e.id());
                    int[] prompt = unmaskedRealInputs.stream().mapToInt(Integer::intValue).toArray();
                    assertEquals(e.prompt(), TOK.decode(prompt), e.id());
                    checked++;
                }
            }
        }
        assertEquals(1200, checked);
    }

    @Test
    void overlongExamplesAreRejectedWhenTruncationIsOff() {
        List<Encoded> out = new ExampleEncoder(TOK, 6, ExampleEncoder.Overflow.REJECT)
                .encode(new Example("f.jsonl:2", "abc", "de"));
        Rejected r = assertInstanceOf(Rejected.class, out.get(0));
        assertEquals("f.jsonl:2", r.sourcePosition());
        assertEquals("too long: 7 tokens (prompt 3, response 2, BOS, EOS) > maxTokens 6 and truncation is off", r.reason());
        // exactly at the limit fits
        assertEquals(7, single(new ExampleEncoder(TOK, 7, ExampleEncoder.Overflow.REJECT),
                new Example("f", "abc", "de")).tokens().length);
    }

    @Test
    void truncationDropsThePromptFromTheLeftThenTheResponseFromTheRight() {
        ExampleEncoder enc = new ExampleEncoder(TOK, 6, ExampleEncoder.Overflow.TRUNCATE);
        TokenizedExample leftCut = single(enc, new Example("a", "wxyz", "de"));
        assertArrayEquals(new int[]{1, 'y' + 3, 'z' + 3, 'd' + 3, 'e' + 3, 2}, leftCut.tokens());
        assertEquals(3, leftCut.responseStart());
        TokenizedExample rightCut = single(enc, new Example("b", "pq", "abcdefgh"));
        assertArrayEquals(new int[]{1, 'a' + 3, 'b' + 3, 'c' + 3, 'd' + 3, 'e' + 3}, rightCut.tokens(),
                "prompt gone, response cut, no EOS");
        assertEquals(1, rightCut.responseStart());
        TokenizedExample justFits = single(enc, new Example("c", "pq", "abcd"));
        assertArrayEquals(new int[]{1, 'a' + 3, 'b' + 3, 'c' + 3, 'd' + 3, 2}, justFits.tokens());
    }

    @Test
    void splitCutsTextIntoBosPrefixedChunksThatRebuildIt() {
        ExampleEncoder enc = new ExampleEncoder(TOK, 5, ExampleEncoder.Overflow.SPLIT);
        List<Encoded> out = enc.encode(new Example("s.txt:1", "", "abcdefghij"));
        assertEquals(3, out.size()); // 10 tokens + EOS in chunks of 4
        StringBuilder text = new StringBuilder();
        for (int k = 0; k < out.size(); k++) {
            TokenizedExample t = assertInstanceOf(TokenizedExample.class, out.get(k));
            assertEquals("s.txt:1#" + k, t.id());
            assertEquals(1, t.tokens()[0]);
            assertEquals(1, t.responseStart());
            assertTrue(t.tokens().length <= 5);
            text.append(TOK.decode(Arrays.copyOfRange(t.tokens(), 1, t.tokens().length)));
        }
        assertEquals("abcdefghij", text.toString());
        int[] last = ((TokenizedExample) out.get(2)).tokens();
        assertEquals(2, last[last.length - 1]);
        // with a prompt, SPLIT truncates
        assertEquals(1, enc.encode(new Example("p", "prompt", "abcdefghij")).size());
    }

    @Test
    void chunksCutOneStreamIntoBosPrefixedPieces() {
        int[] stream = java.util.stream.IntStream.range(10, 10 + 1030).toArray();
        List<TokenizedExample> chunks = ExampleEncoder.chunks("valid.txt", stream, 511, 1);
        assertEquals(List.of(512, 512, 9), chunks.stream().map(c -> c.tokens().length).toList());
        int[] rebuilt = chunks.stream().flatMapToInt(c -> Arrays.stream(c.tokens(), 1, c.tokens().length)).toArray();
        assertArrayEquals(stream, rebuilt);
        assertEquals("valid.txt#2", chunks.get(2).id());
        assertEquals(511 + 511 + 8, chunks.stream().mapToInt(TokenizedExample::lossTokens).sum());
        assertThrows(IllegalArgumentException.class, () -> ExampleEncoder.chunks("x", stream, 0, 1));
    }

    @Test
    void responseThatEncodesToNothingIsRejectedAndBadSettingsFail() {
        ExampleEncoder enc = new ExampleEncoder(new ByteTokenizer() {
            @Override
            public int[] encode(String text) {
                return new int[0];
            }
        }, 8, ExampleEncoder.Overflow.REJECT);
        Rejected r = assertInstanceOf(Rejected.class, enc.encode(new Example("z", "p", "r")).get(0));
        assertTrue(r.reason().startsWith("empty response"));
        assertThrows(IllegalArgumentException.class, () -> new ExampleEncoder(TOK, 1, ExampleEncoder.Overflow.REJECT));
    }
}
