package dev.spiel4j.data;

import dev.spiel4j.tokenizer.Tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Test tokenizer: one token per UTF-8 byte (id = byte + 3), BOS 1, EOS 2, like the byte tokens of tok512. Public for
 * the streams module's tests (gpu-worker's test jar).
 */
public class ByteTokenizer implements Tokenizer {
    public static final ByteTokenizer INSTANCE = new ByteTokenizer();

    @Override
    public int[] encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = (bytes[i] & 0xFF) + 3;
        }
        return ids;
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) {
            if (id >= 3) {
                out.write(id - 3);
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    @Override
    public int vocabSize() {
        return 259;
    }

    @Override
    public int bosId() {
        return 1;
    }

    @Override
    public int eosId() {
        return 2;
    }
}
