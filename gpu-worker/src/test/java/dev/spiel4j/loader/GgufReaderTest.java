package dev.spiel4j.loader;

import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.HostDType;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.model.RopeLayout;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GgufReaderTest {
    private static Path real;
    /** The real file's metadata and tensors, to rewrite with changes. */
    private static Map<String, Object> metadata;
    private static List<GgufTestWriter.Tensor> tensors;

    @TempDir
    Path dir;

    @BeforeAll
    static void readReal() {
        real = SharedAssets.file("model/stories260K.gguf");
        GgufFile gguf = GgufFile.read(real);
        metadata = gguf.metadata();
        tensors = new ArrayList<>();
        for (GgufFile.TensorInfo t : gguf.tensors()) {
            ByteBuffer data = gguf.map(real, t, HostDType.F32);
            byte[] bytes = new byte[data.remaining()];
            data.get(bytes);
            tensors.add(new GgufTestWriter.Tensor(t.name(), t.dims(), t.ggmlType(), bytes));
        }
    }

    @Test
    void loadsStories260K() throws IOException {
        LoadedModel m = GgufReader.load(real);
        assertEquals(new LlamaConfig(64, 5, 8, 4, 172, 512, 2048, 1e-5f, 10000f, RopeLayout.INTERLEAVED, false),
                m.config());
        assertEquals(48, m.tensors().size());
        assertEquals(m.config().tensorShapes().keySet(), m.tensors().keySet());
        HostTensor q = m.tensors().get("model.layers.0.self_attn.q_proj.weight");
        assertArrayEquals(new long[]{64, 64}, q.shape());
        assertArrayEquals(new long[]{32, 64}, m.tensors().get("model.layers.0.self_attn.k_proj.weight").shape());
        assertArrayEquals(new long[]{172, 64}, m.tensors().get("model.layers.0.mlp.gate_proj.weight").shape());
        assertArrayEquals(new long[]{64, 172}, m.tensors().get("model.layers.0.mlp.down_proj.weight").shape());
        // independently of the parser: data start 14176 and blk.0.attn_q at 262400 come from the gguf dump
        float[] expected = new float[64 * 64];
        try (RandomAccessFile f = new RandomAccessFile(real.toFile(), "r")) {
            byte[] raw = new byte[4 * expected.length];
            f.seek(14176 + 262400);
            f.readFully(raw);
            ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(expected);
        }
        assertArrayEquals(expected, q.toFloats());
        // output.weight is stored (a copy of the embedding), so it is kept as an untied head
        assertArrayEquals(m.tensors().get(ModuleNames.EMBED).toFloats(), m.tensors().get(ModuleNames.LM_HEAD).toFloats());
        assertEquals(GgufReader.load(real).fingerprint(), m.fingerprint());
        assertTrue(m.fingerprint().startsWith("sha256:"));
    }

    /**
     * v2, alignment 64, q weights F16, k weights BF16, no output.weight: types are kept on the host, the head is
     * tied and a model built from it agrees with the float32 original up to the rounding.
     */
    @Test
    void loadsV2WithHalfPrecisionTensorsAndTiedHead() throws IOException {
        Map<String, Object> meta = new LinkedHashMap<>(metadata);
        meta.put("general.alignment", 64L);
        List<GgufTestWriter.Tensor> changed = new ArrayList<>();
        for (GgufTestWriter.Tensor t : tensors) {
            if (t.name().endsWith("attn_q.weight")) {
                changed.add(new GgufTestWriter.Tensor(t.name(), t.ggmlDims(), 1, narrow(t.data(), true)));
            } else if (t.name().endsWith("attn_k.weight")) {
                changed.add(new GgufTestWriter.Tensor(t.name(), t.ggmlDims(), 30, narrow(t.data(), false)));
            } else if (!t.name().equals("output.weight")) {
                changed.add(t);
            }
        }
        Path file = dir.resolve("v2.gguf");
        Files.write(file, GgufTestWriter.write(2, meta, changed, 64));
        LoadedModel m = GgufReader.load(file);
        assertTrue(m.config().tiedEmbeddings());
        assertFalse(m.tensors().containsKey(ModuleNames.LM_HEAD));
        HostTensor q = m.tensors().get("model.layers.2.self_attn.q_proj.weight");
        HostTensor k = m.tensors().get("model.layers.2.self_attn.k_proj.weight");
        assertEquals(HostDType.F16, q.dtype());
        assertEquals(HostDType.BF16, k.dtype());
        LoadedModel original = GgufReader.load(real);
        float[] q32 = original.tensors().get("model.layers.2.self_attn.q_proj.weight").toFloats();
        float[] k32 = original.tensors().get("model.layers.2.self_attn.k_proj.weight").toFloats();
        float[] q16 = q.toFloats();
        float[] kb16 = k.toFloats();
        for (int i = 0; i < q32.length; i++) {
            assertEquals(q32[i], q16[i], Math.abs(q32[i]) * 1e-3 + 1e-7);
        }
        for (int i = 0; i < k32.length; i++) {
            assertEquals(Float.intBitsToFloat(Float.floatToIntBits(k32[i]) & 0xFFFF0000), kb16[i]);
        }
        try (NDManager root = NDManager.newBaseManager();
             LlamaModel a = LlamaModel.create(original, root, DataType.FLOAT32);
             LlamaModel b = LlamaModel.create(m, root, DataType.FLOAT32);
             LlamaModel c = LlamaModel.create(m, root, DataType.FLOAT16)) {
            float[] ref = logits(root, a);
            float[] rounded = logits(root, b);
            float[] half = logits(root, c);
            for (int i = 0; i < ref.length; i++) {
                assertEquals(ref[i], rounded[i], 0.1, "logit " + i);
                assertEquals(ref[i], half[i], 0.15, "fp16 logit " + i);
            }
        }
    }

    private static float[] logits(NDManager root, LlamaModel model) {
        try (NDManager scope = root.newSubManager()) {
            long[] ids = {1, 403, 407, 261, 378, 432, 383};
            NDArray out = model.forward(scope, scope.create(ids, new Shape(1, ids.length)), null, LinearLayers.DENSE);
            return out.get(0, ids.length - 1).toFloatArray();
        }
    }

    /** float32 bytes to float16 (round to nearest) or bfloat16 (truncated) bytes. */
    private static byte[] narrow(byte[] f32, boolean half) {
        ByteBuffer in = ByteBuffer.wrap(f32).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer out = ByteBuffer.allocate(f32.length / 2).order(ByteOrder.LITTLE_ENDIAN);
        while (in.hasRemaining()) {
            float f = in.getFloat();
            out.putShort(half ? toHalf(f) : (short) (Float.floatToIntBits(f) >>> 16));
        }
        return out.array();
    }

    private static short toHalf(float f) {
        int sign = (Float.floatToIntBits(f) >>> 16) & 0x8000;
        float a = Math.abs(f);
        if (a < 0x1p-14f) {
            return (short) (sign | Math.round(a / 0x1p-24f));
        }
        int e = Math.getExponent(a);
        int mant = Math.round((a / Math.scalb(1f, e) - 1f) * 1024f);
        if (mant == 1024) {
            e++;
            mant = 0;
        }
        return (short) (sign | ((e + 15) << 10) | mant);
    }

    private Path rewrite(String name, UnaryOperator<List<GgufTestWriter.Tensor>> change) throws IOException {
        Path file = dir.resolve(name);
        Files.write(file, GgufTestWriter.write(3, metadata, change.apply(new ArrayList<>(tensors)), 32));
        return file;
    }

    private static void assertRefused(Path file, String... fragments) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufReader.load(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
        }
    }

    @Test
    void refusesQuantizedTensorsByName() throws IOException {
        Path file = rewrite("q8.gguf", list -> {
            GgufTestWriter.Tensor t = list.get(3);
            list.set(3, new GgufTestWriter.Tensor(t.name(), t.ggmlDims(), 8, new byte[34 * 64 * 64 / 32]));
            return list;
        });
        assertRefused(file, "blk.0.attn_q.weight", "Q8_0");
    }

    @Test
    void refusesTensorsThatDoNotFitTheConfig() throws IOException {
        assertRefused(rewrite("shape.gguf", list -> {
            GgufTestWriter.Tensor t = list.get(3);
            list.set(3, new GgufTestWriter.Tensor(t.name(), new long[]{64, 32}, 0, Arrays.copyOf(t.data(), 8192)));
            return list;
        }), "blk.0.attn_q.weight", "[32, 64]", "[64, 64]");
        assertRefused(rewrite("missing.gguf", list -> {
            list.removeIf(t -> t.name().equals("blk.3.ffn_norm.weight"));
            return list;
        }), "missing", "model.layers.3.post_attention_layernorm.weight");
        assertRefused(rewrite("extra.gguf", list -> {
            list.add(new GgufTestWriter.Tensor("rope_freqs.weight", new long[]{4}, 0, new byte[16]));
            return list;
        }), "unexpected tensor 'rope_freqs.weight'");
        assertRefused(rewrite("layer.gguf", list -> {
            GgufTestWriter.Tensor t = list.get(list.size() - 1);
            list.add(new GgufTestWriter.Tensor("blk.5.ffn_norm.weight", t.ggmlDims(), 0, t.data()));
            return list;
        }), "unexpected tensor 'blk.5.ffn_norm.weight'");
    }

    @Test
    void refusesTruncatedAndLyingFiles() throws IOException {
        byte[] bytes = Files.readAllBytes(real);
        Path truncated = dir.resolve("truncated.gguf");
        Files.write(truncated, Arrays.copyOf(bytes, 1_000_000));
        assertRefused(truncated, "blk.3.ffn_up.weight", "extends past the end");

        Path header = dir.resolve("header.gguf");
        Files.write(header, Arrays.copyOf(bytes, 5000));
        assertRefused(header, "truncated while reading");

        Path magic = dir.resolve("magic.gguf");
        byte[] m = bytes.clone();
        m[0] = 'X';
        Files.write(magic, m);
        assertRefused(magic, "not a GGUF file");

        Path version = dir.resolve("version.gguf");
        Files.write(version, patch(bytes, 4, 1, 4));
        assertRefused(version, "unsupported GGUF version 1");

        Path counts = dir.resolve("counts.gguf");
        Files.write(counts, patch(bytes, 8, 1L << 40, 8));
        assertRefused(counts, "tensor count 1099511627776 is impossible");

        Path keyLength = dir.resolve("key.gguf");
        Files.write(keyLength, patch(bytes, 24, 1L << 50, 8)); // length of the first metadata key
        assertRefused(keyLength, "metadata key #0", "claims a string of");

        Path offset = dir.resolve("offset.gguf");
        Files.write(offset, GgufTestWriter.write(3, metadata, tensors, 32));
        byte[] o = Files.readAllBytes(offset);
        // the last tensor info ends with its u64 offset, right before the padding to the data section
        int lastOffsetAt = indexOf(o, "blk.4.ffn_norm.weight".getBytes()) + "blk.4.ffn_norm.weight".length() + 4 + 8 + 4;
        Files.write(offset, patch(o, lastOffsetAt, 1170944 + 16, 8));
        assertRefused(offset, "blk.4.ffn_norm.weight", "not a multiple of the alignment");
    }

    @Test
    void refusesOtherArchitecturesAndTokenizers() throws IOException {
        Map<String, Object> meta = new LinkedHashMap<>(metadata);
        meta.put("general.architecture", "falcon");
        Path arch = dir.resolve("arch.gguf");
        Files.write(arch, GgufTestWriter.write(3, meta, tensors, 32));
        assertRefused(arch, "architecture 'falcon'");
        meta = new LinkedHashMap<>(metadata);
        meta.put("tokenizer.ggml.model", "gpt2");
        Path tok = dir.resolve("tok.gguf");
        Files.write(tok, GgufTestWriter.write(3, meta, tensors, 32));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufReader.load(tok));
        assertTrue(e.getMessage().contains("gpt2") && e.getMessage().contains(tok.toString()), e.getMessage());
    }

    private static byte[] patch(byte[] bytes, int at, long value, int width) {
        byte[] out = bytes.clone();
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        if (width == 4) {
            b.putInt(at, (int) value);
        } else {
            b.putLong(at, value);
        }
        return out;
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
