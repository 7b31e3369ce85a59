package dev.spiel4j.tokenizer;

import dev.spiel4j.io.SharedAssets;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The HF tokenizer against the ids that transformers produced (golden/stories260K_hf_reference.txt). */
class HfTokenizerTest {
    static final Path DIR = SharedAssets.file("model/stories260K-hf");
    static List<String> golden;
    static HfTokenizer tok;

    @BeforeAll
    static void load() throws IOException {
        golden = Files.readAllLines(SharedAssets.file("golden/stories260K_hf_reference.txt"));
        tok = HfTokenizer.load(DIR);
    }

    static int[] ids(String list) {
        return Arrays.stream(list.split(",")).map(String::trim).filter(s -> !s.isEmpty())
                .mapToInt(Integer::parseInt).toArray();
    }

    static String goldenLine(String prefix) {
        return golden.stream().filter(l -> l.startsWith(prefix)).findFirst().orElseThrow();
    }

    @Test
    void encodesTheGoldenSentenceWithoutSpecialTokens() {
        Matcher m = Pattern.compile("^encode\\('(.*)'\\) = \\[(.*)]$").matcher(goldenLine("encode('Once"));
        assertTrue(m.matches());
        assertArrayEquals(ids(m.group(2)), tok.encode(m.group(1)));
        assertEquals(1, tok.bosId());
        assertEquals(2, tok.eosId());
        assertEquals(512, tok.vocabSize());
    }

    @Test
    void encodesTheEdgeCasesLikeTransformers() {
        Pattern line = Pattern.compile("^'(.*)': ref=\\[.*?] hf=\\[(.*?)] spm=.*$");
        int checked = 0;
        for (String l : golden) {
            Matcher m = line.matcher(l);
            if (m.matches()) {
                String text = unescapePython(m.group(1));
                assertArrayEquals(ids(m.group(2)), tok.encode(text), "encode(" + m.group(1) + ")");
                checked++;
            }
        }
        assertEquals(11, checked, "edge-case lines found in the golden file");
    }

    @Test
    void encodesTheLongLossTextWithoutTruncation() throws IOException {
        String text = Files.readString(SharedAssets.file("data/tinystories_valid_head.txt"));
        text = text.substring(0, 12000).replace("\n\n", "\n");
        int[] ids = tok.encode(text);
        Matcher m = Pattern.compile(".*-> (\\d+) ids .*first 20 ids \\[(.*)]$").matcher(goldenLine("loss text:"));
        assertTrue(m.matches());
        assertEquals(Integer.parseInt(m.group(1)), ids.length);
        assertArrayEquals(ids(m.group(2)), Arrays.copyOf(ids, 20));
    }

    @Test
    void decodeInvertsEncodeAndDropsSpecialTokens() {
        String text = "Once upon a time, there was a little girl named Lily.";
        int[] ids = tok.encode(text);
        int[] withSpecials = new int[ids.length + 2];
        withSpecials[0] = tok.bosId();
        System.arraycopy(ids, 0, withSpecials, 1, ids.length);
        withSpecials[ids.length + 1] = tok.eosId();
        assertEquals(text, tok.decode(withSpecials));
    }

    private static String unescapePython(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) {
                char n = s.charAt(++i);
                b.append(switch (n) {
                    case 'n' -> '\n';
                    case 't' -> '\t';
                    default -> n;
                });
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }
}
