package dev.spiel4j.tokenizer;

import dev.spiel4j.io.ModelFormatException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads and writes a SentencePiece {@code tokenizer.model}: a protobuf {@code ModelProto} handled in its wire format
 * by hand, so that gpu-worker needs no generated code. Only what BPE encoding needs is read: the pieces (field 1:
 * piece = 1, score = 2, type = 3) and from the trainer spec (field 2) the model type (3) and the unknown, BOS and
 * EOS ids (40, 41, 42). Everything else is skipped by wire type.
 *
 * <p>{@link #serialize} writes the pieces, a trainer spec (model type BPE, vocab size, byte fallback when the
 * vocabulary has byte pieces, the special ids) and a normalizer spec that states this project's encoding: the
 * "identity" normalizer, a dummy-prefix space, whitespace escaped to U+2581 and NOT collapsed (field 4 false; the
 * proto default would collapse runs of spaces, which the GGUF/llama.cpp encoding of these models does not do).
 */
final class SentencePieceModelFile {
    private static final int MODEL_TYPE_BPE = 2;
    private static final String[] MODEL_TYPES = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
    private static final long MAX_FILE = 1L << 30;
    private static final int WIRE_VARINT = 0, WIRE_LENGTH = 2, WIRE_FIXED32 = 5;

    private final Path file;

    private SentencePieceModelFile(Path file) {
        this.file = file;
    }

    static SentencePieceBpe read(Path file) {
        return new SentencePieceModelFile(file).parse();
    }

    /** The {@code ModelProto} bytes of {@code tokenizer}; {@link #read} of them gives the same tokenizer back. */
    static byte[] serialize(SentencePieceBpe tokenizer) {
        ByteArrayOutputStream model = new ByteArrayOutputStream();
        boolean hasBytes = false;
        for (int id = 0; id < tokenizer.vocabSize(); id++) {
            ByteArrayOutputStream piece = new ByteArrayOutputStream();
            putBytes(piece, 1, tokenizer.piece(id).getBytes(StandardCharsets.UTF_8));
            putTag(piece, 2, WIRE_FIXED32);
            int bits = Float.floatToRawIntBits(tokenizer.score(id));
            for (int k = 0; k < 4; k++) {
                piece.write(bits >>> (8 * k));
            }
            if (tokenizer.type(id) != SentencePieceBpe.NORMAL) { // NORMAL is the proto default
                putVarint(piece, 3, tokenizer.type(id));
            }
            hasBytes |= tokenizer.type(id) == SentencePieceBpe.BYTE;
            putBytes(model, 1, piece.toByteArray());
        }
        ByteArrayOutputStream trainer = new ByteArrayOutputStream();
        putVarint(trainer, 3, MODEL_TYPE_BPE);
        putVarint(trainer, 4, tokenizer.vocabSize());
        putVarint(trainer, 35, hasBytes ? 1 : 0);
        putVarint(trainer, 40, tokenizer.unkId());
        putVarint(trainer, 41, tokenizer.bosId());
        putVarint(trainer, 42, tokenizer.eosId());
        putBytes(model, 2, trainer.toByteArray());
        ByteArrayOutputStream normalizer = new ByteArrayOutputStream();
        putBytes(normalizer, 1, "identity".getBytes(StandardCharsets.UTF_8));
        putVarint(normalizer, 3, 1);  // add_dummy_prefix
        putVarint(normalizer, 4, 0);  // remove_extra_whitespaces
        putVarint(normalizer, 5, 1);  // escape_whitespaces
        putBytes(model, 3, normalizer.toByteArray());
        return model.toByteArray();
    }

    private static void putTag(ByteArrayOutputStream out, int field, int wire) {
        putRawVarint(out, (long) field << 3 | wire);
    }

    private static void putVarint(ByteArrayOutputStream out, int field, int value) {
        if (value < 0) {
            throw new IllegalArgumentException("field " + field + " value " + value + " is negative");
        }
        putTag(out, field, WIRE_VARINT);
        putRawVarint(out, value);
    }

    private static void putBytes(ByteArrayOutputStream out, int field, byte[] bytes) {
        putTag(out, field, WIRE_LENGTH);
        putRawVarint(out, bytes.length);
        out.writeBytes(bytes);
    }

    private static void putRawVarint(ByteArrayOutputStream out, long v) {
        while ((v & ~0x7FL) != 0) {
            out.write((int) (v & 0x7F) | 0x80);
            v >>>= 7;
        }
        out.write((int) v);
    }

    private SentencePieceBpe parse() {
        ByteBuffer buf;
        try {
            long size = Files.size(file);
            if (size > MAX_FILE) {
                throw fail("is " + size + " bytes, too large for a tokenizer model");
            }
            buf = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read tokenizer model: " + e.getMessage(), e);
        }
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        int modelType = 1; // proto default: UNIGRAM
        int unk = 0, bos = 1, eos = 2;
        boolean sawTrainerSpec = false;
        while (buf.hasRemaining()) {
            long tag = varint(buf, "field tag");
            int field = (int) (tag >>> 3);
            int wire = (int) (tag & 7);
            if (field == 1 && wire == 2) {
                ByteBuffer msg = sub(buf, "piece #" + pieces.size());
                String piece = null;
                float score = 0;
                int type = SentencePieceBpe.NORMAL;
                while (msg.hasRemaining()) {
                    long t = varint(msg, "piece field tag");
                    switch ((int) t) {
                        case (1 << 3) | 2 -> piece = StandardCharsets.UTF_8.decode(sub(msg, "piece text")).toString();
                        case (2 << 3) | 5 -> score = fixed32(msg, "piece score");
                        case (3 << 3) -> type = (int) varint(msg, "piece type");
                        default -> skip(msg, (int) (t & 7), "piece field " + (t >>> 3));
                    }
                }
                if (piece == null) {
                    throw fail("piece #" + pieces.size() + " has no text");
                }
                pieces.add(piece);
                scores.add(score);
                types.add(type);
            } else if (field == 2 && wire == 2) {
                sawTrainerSpec = true;
                ByteBuffer spec = sub(buf, "trainer spec");
                while (spec.hasRemaining()) {
                    long t = varint(spec, "trainer spec field tag");
                    int f = (int) (t >>> 3);
                    int w = (int) (t & 7);
                    if (w != 0) {
                        skip(spec, w, "trainer spec field " + f);
                        continue;
                    }
                    long v = varint(spec, "trainer spec field " + f);
                    switch (f) {
                        case 3 -> modelType = (int) v;
                        case 40 -> unk = (int) v;
                        case 41 -> bos = (int) v;
                        case 42 -> eos = (int) v;
                        default -> { }
                    }
                }
            } else {
                skip(buf, wire, "field " + field);
            }
        }
        if (pieces.isEmpty()) {
            throw fail("holds no pieces: not a SentencePiece model");
        }
        if (!sawTrainerSpec || modelType != MODEL_TYPE_BPE) {
            String name = modelType >= 0 && modelType < MODEL_TYPES.length ? MODEL_TYPES[modelType] : "" + modelType;
            throw fail("is a SentencePiece " + name + " model; only BPE is supported");
        }
        float[] s = new float[scores.size()];
        int[] ty = new int[types.size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = scores.get(i);
            ty[i] = types.get(i);
        }
        try {
            return new SentencePieceBpe(pieces, s, ty, unk, bos, eos);
        } catch (IllegalArgumentException e) {
            throw fail(e.getMessage());
        }
    }

    private long varint(ByteBuffer b, String what) {
        long result = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (!b.hasRemaining()) {
                throw fail("truncated while reading " + what);
            }
            byte x = b.get();
            result |= (long) (x & 0x7F) << shift;
            if (x >= 0) {
                return result;
            }
        }
        throw fail("malformed varint in " + what);
    }

    private float fixed32(ByteBuffer b, String what) {
        if (b.remaining() < 4) {
            throw fail("truncated while reading " + what);
        }
        return b.getFloat();
    }

    private ByteBuffer sub(ByteBuffer b, String what) {
        long len = varint(b, "length of " + what);
        if (len < 0 || len > b.remaining()) {
            throw fail(what + " claims " + len + " bytes but only " + b.remaining() + " remain");
        }
        ByteBuffer out = b.slice(b.position(), (int) len).order(ByteOrder.LITTLE_ENDIAN);
        b.position(b.position() + (int) len);
        return out;
    }

    private void skip(ByteBuffer b, int wire, String what) {
        switch (wire) {
            case 0 -> varint(b, what);
            case 1 -> advance(b, 8, what);
            case 2 -> sub(b, what);
            case 5 -> advance(b, 4, what);
            default -> throw fail("unsupported protobuf wire type " + wire + " in " + what
                    + ": not a SentencePiece model");
        }
    }

    private void advance(ByteBuffer b, int n, String what) {
        if (b.remaining() < n) {
            throw fail("truncated while reading " + what);
        }
        b.position(b.position() + n);
    }

    private ModelFormatException fail(String problem) {
        return new ModelFormatException(file, "tokenizer model " + problem);
    }
}
