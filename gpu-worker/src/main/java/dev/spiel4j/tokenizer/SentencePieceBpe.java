package dev.spiel4j.tokenizer;

import dev.spiel4j.io.AtomicFiles;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SentencePiece BPE as llama2.c and llama.cpp run it for LLaMA vocabularies: prepend one space (the dummy prefix),
 * turn every space into U+2581, map each character to its piece or, when the vocabulary lacks it, to byte tokens
 * {@code <0xNN>} (byte fallback), then repeatedly merge the adjacent pair whose merged piece scores highest (the
 * leftmost pair on ties) until no adjacent pair forms a piece. No other normalisation is applied: runs of spaces
 * are kept, unlike SentencePiece's default {@code remove_extra_whitespaces}.
 *
 * <p>Merging uses a priority queue over adjacent pairs with stale entries skipped, which picks the same pair as
 * llama2.c's full rescan in O(n log n) instead of O(n^2).
 */
public final class SentencePieceBpe implements Tokenizer {
    /** SentencePiece piece types (also GGUF's {@code tokenizer.ggml.token_type}). */
    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;
    private static final char SPACE = '\u2581';

    private final String[] pieces;
    private final float[] scores;
    private final int[] types;
    private final int unkId;
    private final int bosId;
    private final int eosId;
    /** Pieces that text can be split into or merged to (normal and user-defined), by string. */
    private final Map<String, Integer> mergeable = new HashMap<>();
    /** The token id of each byte value, or the unknown id when the vocabulary has no such byte token. */
    private final int[] byteIds = new int[256];
    /** The byte value of each byte token, -1 for other tokens. */
    private final int[] byteValues;

    /**
     * @param pieces the vocabulary in id order
     * @param scores merge priority per piece (higher merges first)
     * @param types  SentencePiece piece type per piece (1 normal, 2 unknown, 3 control, 4 user defined, 5 unused,
     *               6 byte)
     */
    public SentencePieceBpe(List<String> pieces, float[] scores, int[] types, int unkId, int bosId, int eosId) {
        int n = pieces.size();
        if (n == 0 || scores.length != n || types.length != n) {
            throw new IllegalArgumentException("tokenizer needs one score and one type per piece: " + n + " pieces, "
                    + scores.length + " scores, " + types.length + " types");
        }
        checkSpecial("unknown", unkId, n);
        checkSpecial("bos", bosId, n);
        checkSpecial("eos", eosId, n);
        this.pieces = pieces.toArray(String[]::new);
        this.scores = scores.clone();
        this.types = types.clone();
        this.unkId = unkId;
        this.bosId = bosId;
        this.eosId = eosId;
        this.byteValues = new int[n];
        Arrays.fill(byteIds, unkId);
        for (int id = 0; id < n; id++) {
            byteValues[id] = -1;
            if (types[id] == NORMAL || types[id] == USER_DEFINED) {
                mergeable.putIfAbsent(this.pieces[id], id);
            } else if (types[id] == BYTE) {
                int value = parseByte(this.pieces[id]);
                if (value < 0) {
                    throw new IllegalArgumentException("byte token " + id + " is '" + this.pieces[id]
                            + "', not <0xNN>");
                }
                byteValues[id] = value;
                if (byteIds[value] == unkId) {
                    byteIds[value] = id;
                }
            }
        }
    }

    /**
     * Builds the tokenizer from GGUF metadata ({@code tokenizer.ggml.*}); only the SentencePiece ("llama") model is
     * supported. Errors are {@link IllegalArgumentException}s naming the metadata key; the caller adds the file.
     */
    public static SentencePieceBpe fromGgufMetadata(Map<String, Object> metadata) {
        Object model = metadata.get("tokenizer.ggml.model");
        if (!"llama".equals(model)) {
            throw new IllegalArgumentException("tokenizer model '" + model
                    + "' is not supported (only SentencePiece 'llama')");
        }
        List<?> tokens = list(metadata, "tokenizer.ggml.tokens", true);
        int n = tokens.size();
        String[] pieces = new String[n];
        float[] scores = new float[n];
        int[] types = new int[n];
        Arrays.fill(types, NORMAL);
        List<?> scoreList = list(metadata, "tokenizer.ggml.scores", false);
        List<?> typeList = list(metadata, "tokenizer.ggml.token_type", false);
        for (List<?> l : Arrays.asList(scoreList, typeList)) {
            if (l != null && l.size() != n) {
                throw new IllegalArgumentException("tokenizer has " + n + " tokens but " + l.size()
                        + " scores or types");
            }
        }
        for (int i = 0; i < n; i++) {
            if (!(tokens.get(i) instanceof String s)) {
                throw new IllegalArgumentException("tokenizer.ggml.tokens[" + i + "] is not a string");
            }
            pieces[i] = s;
            if (scoreList != null) {
                if (!(scoreList.get(i) instanceof Number v)) {
                    throw new IllegalArgumentException("tokenizer.ggml.scores[" + i + "] is not a number");
                }
                scores[i] = v.floatValue();
            }
            if (typeList != null) {
                if (!(typeList.get(i) instanceof Long v)) {
                    throw new IllegalArgumentException("tokenizer.ggml.token_type[" + i
                            + "] is not an integer");
                }
                types[i] = v.intValue();
            }
        }
        return new SentencePieceBpe(List.of(pieces), scores, types, id(metadata, "tokenizer.ggml.unknown_token_id", 0),
                id(metadata, "tokenizer.ggml.bos_token_id", 1), id(metadata, "tokenizer.ggml.eos_token_id", 2));
    }

    /** Reads a SentencePiece {@code tokenizer.model} (a serialized {@code ModelProto}) of a BPE model. */
    public static SentencePieceBpe fromModelFile(Path file) {
        return SentencePieceModelFile.read(file);
    }

    /**
     * Writes this tokenizer as a SentencePiece {@code tokenizer.model} that {@link #fromModelFile} and the
     * {@code sentencepiece} library read back to the same encoding (see {@link SentencePieceModelFile}).
     */
    public void writeModelFile(Path file) {
        byte[] bytes = SentencePieceModelFile.serialize(this);
        AtomicFiles.write(file, ch -> AtomicFiles.writeFully(ch, ByteBuffer.wrap(bytes)));
    }

    /**
     * Writes this tokenizer as the {@code tokenizers} library's {@code tokenizer.json}, as {@code transformers}
     * converts a LLaMA SentencePiece model (see {@link TokenizerJsonFile}).
     */
    public void writeTokenizerJson(Path file) {
        AtomicFiles.writeString(file, TokenizerJsonFile.of(this).toPrettyString());
    }

    private static List<?> list(Map<String, Object> metadata, String key, boolean required) {
        Object v = metadata.get(key);
        if (v == null && !required) {
            return null;
        }
        if (!(v instanceof List<?> l)) {
            throw new IllegalArgumentException("metadata '" + key + "' is missing or not an array");
        }
        return l;
    }

    private static int id(Map<String, Object> metadata, String key, int fallback) {
        return metadata.get(key) instanceof Long v ? v.intValue() : fallback;
    }

    private static void checkSpecial(String what, int id, int vocab) {
        if (id < 0 || id >= vocab) {
            throw new IllegalArgumentException("tokenizer " + what + " id " + id + " is outside the vocabulary of "
                    + vocab);
        }
    }

    private static int parseByte(String piece) {
        if (piece.length() != 6 || !piece.startsWith("<0x") || !piece.endsWith(">")) {
            return -1;
        }
        try {
            return Integer.parseInt(piece.substring(3, 5), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    @Override
    public int[] encode(String text) {
        if (text.isEmpty()) {
            return new int[0];
        }
        String s = SPACE + text.replace(' ', SPACE);
        // initial symbols: one per character, or one per UTF-8 byte of a character the vocabulary lacks
        int[] ids = new int[s.length() * 4];
        int count = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            String ch = new String(Character.toChars(cp));
            i += ch.length();
            Integer id = mergeable.get(ch);
            if (id != null) {
                ids[count++] = id;
            } else {
                for (byte b : ch.getBytes(StandardCharsets.UTF_8)) {
                    ids[count++] = byteIds[b & 0xFF];
                }
            }
        }
        return merge(Arrays.copyOf(ids, count));
    }

    /** A candidate merge of the symbols at {@code left} and {@code right}, as the ids they had when queued. */
    private record Pair(float score, int left, int right, int leftId, int rightId, int merged) {
    }

    private int[] merge(int[] ids) {
        int n = ids.length;
        int[] next = new int[n];
        int[] prev = new int[n];
        for (int i = 0; i < n; i++) {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        PriorityQueue<Pair> queue = new PriorityQueue<>((a, b) -> a.score != b.score
                ? Float.compare(b.score, a.score) : Integer.compare(a.left, b.left));
        for (int i = 0; i + 1 < n; i++) {
            offer(queue, ids, i, i + 1);
        }
        int alive = n;
        while (!queue.isEmpty()) {
            Pair p = queue.poll();
            boolean stale = ids[p.left] != p.leftId || next[p.left] != p.right || ids[p.right] != p.rightId;
            if (stale) {
                continue;
            }
            ids[p.left] = p.merged;
            ids[p.right] = -1;
            next[p.left] = next[p.right];
            if (next[p.right] >= 0) {
                prev[next[p.right]] = p.left;
            }
            alive--;
            if (prev[p.left] >= 0) {
                offer(queue, ids, prev[p.left], p.left);
            }
            if (next[p.left] >= 0) {
                offer(queue, ids, p.left, next[p.left]);
            }
        }
        int[] out = new int[alive];
        for (int i = 0, k = 0; i >= 0 && k < alive; i = next[i]) {
            out[k++] = ids[i];
        }
        return out;
    }

    private void offer(PriorityQueue<Pair> queue, int[] ids, int left, int right) {
        Integer merged = mergeable.get(pieces[ids[left]] + pieces[ids[right]]);
        if (merged != null) {
            queue.add(new Pair(scores[merged], left, right, ids[left], ids[right], merged));
        }
    }

    /**
     * Byte tokens are reassembled into UTF-8 (invalid sequences become U+FFFD), control and unused tokens are
     * dropped, the unknown token reads " \u2047 " as in SentencePiece, and the dummy-prefix space of the first piece
     * (at the start or after a BOS) is removed, so {@code decode(encode(text))} returns {@code text}.
     */
    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        boolean atStart = true;
        for (int id : ids) {
            if (id < 0 || id >= pieces.length) {
                throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + pieces.length);
            }
            switch (types[id]) {
                case CONTROL, UNUSED -> {
                    atStart |= id == bosId;
                    continue;
                }
                case BYTE -> out.write(byteValues[id]);
                case UNKNOWN -> out.writeBytes(" \u2047 ".getBytes(StandardCharsets.UTF_8));
                default -> {
                    String text = pieces[id].replace(SPACE, ' ');
                    if (atStart && text.startsWith(" ")) {
                        text = text.substring(1);
                    }
                    out.writeBytes(text.getBytes(StandardCharsets.UTF_8));
                }
            }
            atStart = false;
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** The piece string of a token (for diagnostics). */
    public String piece(int id) {
        return pieces[id];
    }

    float score(int id) {
        return scores[id];
    }

    int type(int id) {
        return types[id];
    }

    @Override
    public int vocabSize() {
        return pieces.length;
    }

    @Override
    public int bosId() {
        return bosId;
    }

    @Override
    public int eosId() {
        return eosId;
    }

    public int unkId() {
        return unkId;
    }
}
