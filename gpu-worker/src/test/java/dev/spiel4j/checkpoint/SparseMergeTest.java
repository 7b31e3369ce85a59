package dev.spiel4j.checkpoint;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.model.ModuleNames;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SparseMergeTest {

    /** The base's block linears with the deltas added, computed element by element on the host. */
    static Map<String, float[]> denseAdd(LoadedModel m, SparseFineTuning sft) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (String module : ModuleNames.allLinears(m.config().layers())) {
            out.put(module + ".weight", m.tensors().get(module + ".weight").toFloats());
        }
        for (DeltaTensor d : sft.deltas()) {
            float[] w = out.get(d.module() + ".weight");
            long[] idx = d.indices();
            float[] val = d.values();
            for (int j = 0; j < idx.length; j++) {
                w[(int) idx[j]] += val[j];
            }
        }
        return out;
    }

    static Map<String, NDArray> live(NDManager manager, LoadedModel m) {
        Map<String, NDArray> weights = new LinkedHashMap<>();
        for (String module : ModuleNames.allLinears(m.config().layers())) {
            HostTensor t = m.tensors().get(module + ".weight");
            weights.put(t.name(), manager.create(t.toFloats(), new Shape(t.shape())));
        }
        return weights;
    }

    @Test
    void mergeEqualsTheDenseHostAddAndUnmergeRestores() {
        LoadedModel model = Fixtures.model();
        SparseFineTuning sft = Fixtures.random(model, 200, 0.05f, 11, "spiel-ag");
        Map<String, float[]> expected = denseAdd(model, sft);
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> weights = live(manager, model);
            int arrays = manager.getManagedArrays().size();
            SparseMerge.merge(sft, weights);
            for (var e : weights.entrySet()) {
                // float32 adds in PyTorch and in Java round identically, and untouched elements get + 0.
                assertArrayEquals(expected.get(e.getKey()), e.getValue().toFloatArray(), 0f, e.getKey());
            }
            Map<String, HostTensor> onHost = SparseMerge.mergeOnHost(sft, model.tensors(), model.fingerprint());
            for (var e : expected.entrySet()) {
                assertArrayEquals(e.getValue(), onHost.get(e.getKey()).toFloats(), 0f, e.getKey());
            }
            for (int round = 0; round < 20; round++) {
                SparseMerge.unmerge(sft, weights);
                SparseMerge.merge(sft, weights);
            }
            SparseMerge.unmerge(sft, weights);
            for (var e : weights.entrySet()) {
                float[] base = model.tensors().get(e.getKey()).toFloats();
                float[] back = e.getValue().toFloatArray();
                for (int i = 0; i < base.length; i++) {
                    assertEquals(base[i], back[i], 1e-6f, e.getKey() + "[" + i + "]");
                }
            }
            assertEquals(arrays, manager.getManagedArrays().size(), "merge must not leak arrays into the manager");
        }
    }

    @Test
    void refusesBeforeTouchingAnyWeight() {
        LoadedModel model = Fixtures.model();
        SparseFineTuning good = Fixtures.random(model, 10, 1f, 12, "spiel-ag");
        DeltaTensor first = good.deltas().get(0);
        SparseFineTuning bad = new SparseFineTuning(good.baseFingerprint(), "x", Map.of(), List.of(first,
                new DeltaTensor("model.layers.9.mlp.up_proj", 4, 4, new long[]{1}, new float[]{1})));
        SparseFineTuning wrongShape = new SparseFineTuning(good.baseFingerprint(), "x", Map.of(), List.of(first,
                new DeltaTensor("model.layers.0.mlp.up_proj", 64, 172, new long[]{1}, new float[]{1})));
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> weights = live(manager, model);
            String m = assertThrows(IllegalArgumentException.class, () -> SparseMerge.merge(bad, weights)).getMessage();
            assertTrue(m.contains("model.layers.9.mlp.up_proj.weight"), m);
            m = assertThrows(IllegalArgumentException.class, () -> SparseMerge.merge(wrongShape, weights)).getMessage();
            assertTrue(m.contains("(172, 64)") && m.contains("[64, 172]"), m);
            String name = first.module() + ".weight";
            assertArrayEquals(model.tensors().get(name).toFloats(), weights.get(name).toFloatArray(), 0f);
        }
        assertThrows(IllegalStateException.class,
                () -> SparseMerge.mergeOnHost(good, model.tensors(), "sha256:another"));
    }
}
