package dev.spiel4j.streams;

import dev.spiel4j.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;

/** Test tokenizer: one token per UTF-8 byte (id = byte + 3), BOS 1, EOS 2. */
final class ByteTokenizer implements Tokenizer {
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
        byte[] bytes = new byte[ids.length];
        int n = 0;
        for (int id : ids) {
            if (id >= 3) {
                bytes[n++] = (byte) (id - 3);
            }
        }
        return new String(bytes, 0, n, StandardCharsets.UTF_8);
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
