package dev.spiel4j.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.ModelFormatException;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.io.SharedAssets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SparseFineTuningTest {
    @TempDir
    Path dir;

    static void assertSame(SparseFineTuning a, SparseFineTuning b) {
        assertEquals(a.baseFingerprint(), b.baseFingerprint());
        assertEquals(a.method(), b.method());
        assertEquals(a.hyperparameters(), b.hyperparameters());
        assertEquals(a.deltas().size(), b.deltas().size());
        for (int i = 0; i < a.deltas().size(); i++) {
            DeltaTensor x = a.deltas().get(i);
            DeltaTensor y = b.deltas().get(i);
            assertEquals(x.module(), y.module());
            assertEquals(x.rows(), y.rows());
            assertEquals(x.cols(), y.cols());
            assertArrayEquals(x.indices(), y.indices(), x.module());
            float[] xv = x.values();
            float[] yv = y.values();
            assertEquals(xv.length, yv.length);
            for (int j = 0; j < xv.length; j++) {
                assertEquals(Float.floatToRawIntBits(xv[j]), Float.floatToRawIntBits(yv[j]), x.module() + "[" + j + "]");
            }
        }
    }

    @Test
    void roundTripsBitwise() {
        SparseFineTuning sft = Fixtures.random(Fixtures.model(), 40, 1e-3f, 1, "spiel-ag");
        // Awkward values must survive exactly too.
        DeltaTensor first = sft.deltas().get(0);
        float[] v = first.values();
        v[0] = -0.0f;
        v[1] = Float.MIN_VALUE;
        v[2] = -Float.MAX_VALUE;
        List<DeltaTensor> deltas = new ArrayList<>(sft.deltas());
        deltas.set(0, new DeltaTensor(first.module(), first.rows(), first.cols(), first.indices(), v));
        sft = new SparseFineTuning(sft.baseFingerprint(), sft.method(), sft.hyperparameters(), deltas);

        Path p = dir.resolve("a.sft.safetensors");
        sft.save(p);
        assertSame(sft, SparseFineTuning.load(p));
        SafeTensors.Contents raw = SafeTensors.read(p);
        assertEquals(HostDType.I32, raw.require("model.layers.0.self_attn.q_proj.indices").dtype());
        assertEquals(HostDType.F32, raw.require("model.layers.0.self_attn.q_proj.values").dtype());
        assertEquals("1", raw.metadata().get("spiel4j.format_version"));
    }

    @Test
    void usesInt64IndicesForHugeMatrices() {
        long big = 65536L * 65536 - 1;
        SparseFineTuning sft = new SparseFineTuning("sha256:x", "spiel-ma", Map.of(),
                List.of(new DeltaTensor("model.layers.0.mlp.up_proj", 65536, 65536, new long[]{big, 3}, new float[]{1, 2})));
        Path p = dir.resolve("big.safetensors");
        sft.save(p);
        assertEquals(HostDType.I64, SafeTensors.read(p).require("model.layers.0.mlp.up_proj.indices").dtype());
        assertSame(sft, SparseFineTuning.load(p));
    }

    @Test
    void requireBaseNamesBothFingerprints() {
        SparseFineTuning sft = Fixtures.random(Fixtures.model(), 5, 1e-3f, 2, "spiel-ag");
        sft.requireBase(Fixtures.model().fingerprint());
        String m = assertThrows(IllegalStateException.class, () -> sft.requireBase("sha256:other")).getMessage();
        assertTrue(m.contains(Fixtures.model().fingerprint()) && m.contains("sha256:other"), m);
    }

    @Test
    void refusesDuplicateIndicesInMemory() {
        var e = assertThrows(IllegalArgumentException.class, () -> new SparseFineTuning("b", "m", Map.of(),
                List.of(new DeltaTensor("x", 2, 2, new long[]{1, 3, 1}, new float[3]))));
        assertTrue(e.getMessage().contains("index 1 appears twice"));
    }

    /** Saves a valid file, lets {@code edit} corrupt its tensors or metadata, and returns the load error. */
    String corrupted(Consumer<Map<String, HostTensor>> editTensors, Consumer<Map<String, String>> editMeta) {
        Path p = dir.resolve("ok.safetensors");
        new SparseFineTuning("sha256:b", "spiel-ag", Map.of("lr", "1"),
                List.of(new DeltaTensor("m", 4, 8, new long[]{0, 31, 5}, new float[]{1, 2, 3}))).save(p);
        SafeTensors.Contents c = SafeTensors.read(p);
        Map<String, HostTensor> tensors = new LinkedHashMap<>(c.tensors());
        Map<String, String> meta = new LinkedHashMap<>(c.metadata());
        editTensors.accept(tensors);
        editMeta.accept(meta);
        Path bad = dir.resolve("bad.safetensors");
        SafeTensors.write(bad, tensors.values(), meta);
        String m = assertThrows(ModelFormatException.class, () -> SparseFineTuning.load(bad)).getMessage();
        assertTrue(m.startsWith(bad.toString()), m);
        return m;
    }

    static HostTensor ints(String name, int... v) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * v.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(v);
        return new HostTensor(name, new long[]{v.length}, HostDType.I32, b);
    }

    @Test
    void loadValidatesEverything() {
        assertTrue(corrupted(t -> { }, m -> m.put("spiel4j.format_version", "2")).contains("format version 2"));
        assertTrue(corrupted(t -> t.put("m.indices", ints("m.indices", 0, 32, 5)), m -> { })
                .contains("module 'm': index 32 is outside the [4, 8] matrix"));
        assertTrue(corrupted(t -> t.put("m.indices", ints("m.indices", 0, 5, 5)), m -> { })
                .contains("module 'm': index 5 appears twice"));
        assertTrue(corrupted(t -> t.put("m.indices", ints("m.indices", 0, 5)), m -> { })
                .contains("must be vectors of one length"));
        assertTrue(corrupted(t -> t.remove("m.values"), m -> { }).contains("tensor 'm.values' is missing"));
        assertTrue(corrupted(t -> t.put("x", ints("x", 1)), m -> { }).contains("tensor 'x' belongs to no module"));
        assertTrue(corrupted(t -> t.put("m.values", SparseFineTuningFile.floatTensor("m.values",
                new float[]{1, Float.NaN, 3})), m -> { }).contains("module 'm': value 1 is NaN"));
        assertTrue(corrupted(t -> { }, m -> m.put("modules", "{\"m\": [4]}")).contains("not [rows, cols]"));
        assertTrue(corrupted(t -> { }, m -> m.remove("base_fingerprint")).contains("'base_fingerprint' is missing"));
        String m = assertThrows(ModelFormatException.class, () -> SparseFineTuning.load(
                SharedAssets.file("model/stories260K-hf/model.safetensors"))).getMessage();
        assertTrue(m.contains("not a spiel4j sparse-fine-tuning file"), m);
    }

    @Test
    void composeIsTheWeightedSumOfDenseDeltas() {
        LoadedModel model = Fixtures.model();
        SparseFineTuning a = Fixtures.random(model, 300, 1e-2f, 3, "spiel-ag");
        SparseFineTuning b = Fixtures.random(model, 300, 1e-2f, 4, "spiel-ma");
        double[] w = {0.5, -2.0};
        SparseFineTuning c = SparseFineTuning.compose(List.of(a, b), w);
        assertEquals(a.baseFingerprint(), c.baseFingerprint());
        assertEquals("compose", c.method());
        int shared = 0;
        for (DeltaTensor dc : c.deltas()) {
            int n = dc.rows() * dc.cols();
            double[] dense = new double[n];
            DeltaTensor[] parts = {a.delta(dc.module()).orElseThrow(), b.delta(dc.module()).orElseThrow()};
            boolean[] seen = new boolean[n];
            for (int p = 0; p < 2; p++) {
                long[] idx = parts[p].indices();
                float[] val = parts[p].values();
                for (int j = 0; j < idx.length; j++) {
                    dense[(int) idx[j]] += w[p] * val[j];
                    shared += p == 1 && seen[(int) idx[j]] ? 1 : 0;
                    seen[(int) idx[j]] = true;
                }
            }
            double[] got = new double[n];
            long[] idx = dc.indices();
            float[] val = dc.values();
            for (int j = 0; j < idx.length; j++) {
                got[(int) idx[j]] = val[j];
            }
            int support = 0;
            for (int i = 0; i < n; i++) {
                assertEquals(dense[i], got[i], 1e-7, dc.module() + " element " + i);
                support += seen[i] ? 1 : 0;
            }
            assertEquals(support, dc.size(), "the union of the indices");
        }
        assertTrue(shared > 0, "the fixtures must overlap for the test to mean something");
    }

    @Test
    void composeRefusesDifferentBasesAndShapes() {
        SparseFineTuning a = new SparseFineTuning("sha256:a", "m", Map.of(),
                List.of(new DeltaTensor("x", 2, 3, new long[]{1}, new float[]{1})));
        SparseFineTuning otherBase = new SparseFineTuning("sha256:b", "m", Map.of(), a.deltas());
        SparseFineTuning otherShape = new SparseFineTuning("sha256:a", "m", Map.of(),
                List.of(new DeltaTensor("x", 3, 2, new long[]{1}, new float[]{1})));
        String m = assertThrows(IllegalArgumentException.class,
                () -> SparseFineTuning.compose(List.of(a, otherBase), new double[]{1, 1})).getMessage();
        assertTrue(m.contains("sha256:a") && m.contains("sha256:b"), m);
        m = assertThrows(IllegalArgumentException.class,
                () -> SparseFineTuning.compose(List.of(a, otherShape), new double[]{1, 1})).getMessage();
        assertTrue(m.contains("x") && m.contains("[2, 3]") && m.contains("[3, 2]"), m);
    }

    @Test
    void inspectSummarisesCountsDensityAndValues() throws Exception {
        SparseFineTuning sft = new SparseFineTuning("sha256:a", "spiel-ag", Map.of("lr", "0.1"), List.of(
                new DeltaTensor("m1", 4, 5, new long[]{0, 7}, new float[]{-1, 3}),
                new DeltaTensor("m2", 2, 5, new long[]{9}, new float[]{0.5f})));
        SparseFineTuningSummary s = sft.inspect();
        assertEquals(3, s.total().count());
        assertEquals(30, s.total().elements());
        assertEquals(0.1, s.total().density(), 1e-12);
        assertEquals(1.5, s.total().meanAbs(), 1e-12);
        assertEquals(3, s.total().maxAbs(), 0);
        assertEquals(2.0, s.modules().get(0).stats().meanAbs(), 1e-12);
        assertEquals(0.1, s.modules().get(1).stats().density(), 1e-12);
        String text = s.text();
        assertTrue(text.contains("m1") && text.contains("4x5") && text.contains("spiel-ag") && text.contains("lr = 0.1"),
                text);
        JsonNode json = JsonFiles.MAPPER.readTree(JsonFiles.MAPPER.writeValueAsString(s.toMap()));
        assertEquals(3, json.path("total").path("count").asInt());
        assertEquals("m2", json.path("modules").get(1).path("module").asText());
        assertEquals("sha256:a", json.path("base_fingerprint").asText());
    }
}
