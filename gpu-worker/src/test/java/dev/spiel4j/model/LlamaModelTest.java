package dev.spiel4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.SharedAssets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** stories260K.gguf against golden/stories260K_reference.txt and stories260K_hf_reference.txt. */
class LlamaModelTest {
    private static final int[] SENTENCE = Golden.SENTENCE;
    private static final int[] GREEDY = Golden.GREEDY;
    private static NDManager root;
    private static LoadedModel loaded;
    private static LlamaModel model;

    @BeforeAll
    static void load() {
        root = NDManager.newBaseManager();
        loaded = GgufReader.load(SharedAssets.file("model/stories260K.gguf"));
        model = LlamaModel.create(loaded, root, DataType.FLOAT32);
    }

    @AfterAll
    static void close() {
        model.close();
        root.close();
    }

    /** Logits of the last position after [BOS] + ids, float32 on the host. */
    private static float[] lastLogits(LlamaModel m, int... ids) {
        try (NDManager scope = root.newSubManager()) {
            long[] tokens = IntStream.concat(IntStream.of(1), IntStream.of(ids)).asLongStream().toArray();
            NDArray logits = m.forward(scope, scope.create(tokens, new Shape(1, tokens.length)), null,
                    LinearLayers.DENSE);
            return logits.get(0, tokens.length - 1).toFloatArray();
        }
    }

    private static int[] topK(float[] values, int k) {
        return IntStream.range(0, values.length).boxed()
                .sorted((a, b) -> Float.compare(values[b], values[a])).limit(k).mapToInt(Integer::intValue).toArray();
    }

    private static void assertTop5(int[] ids, float[] values, float[] logits) {
        assertArrayEquals(ids, topK(logits, 5));
        for (int i = 0; i < 5; i++) {
            assertEquals(values[i], logits[ids[i]], 1e-3, "logit of " + ids[i]);
        }
    }

    @Test
    void topFiveAfterBosMatchGolden() {
        assertTop5(new int[]{403, 385, 410, 317, 407},
                new float[]{17.0235f, 15.4062f, 13.1083f, 12.7692f, 12.4181f}, lastLogits(model));
    }

    /** Position 15 depends on the rotary layout, position 0 does not. */
    @Test
    void topFiveAfterTheSentenceMatchGolden() {
        assertTop5(new int[]{338, 385, 317, 342, 405},
                new float[]{17.4565f, 14.7381f, 13.8856f, 11.7850f, 11.2950f}, lastLogits(model, SENTENCE));
    }

    @Test
    void cachedGreedyGenerationMatchesGoldenAndFullForwardArgmax() {
        int[] generated = model.generate(new int[]{1}, loaded.tokenizer().eosId(), GenerationConfig.greedy(40),
                LinearLayers.DENSE);
        assertArrayEquals(GREEDY, generated);
        // a multi-token prompt fills the cache in one pass and continues the same greedy story
        int[] prompt = IntStream.concat(IntStream.of(1), IntStream.of(GREEDY).limit(6)).toArray();
        assertArrayEquals(Arrays.copyOfRange(GREEDY, 6, 20), model.generate(prompt, loaded.tokenizer().eosId(),
                GenerationConfig.greedy(14), LinearLayers.DENSE));
        // without a cache: the whole sequence again at every step
        int[] ids = new int[0];
        for (int step = 0; step < 40; step++) {
            float[] logits = lastLogits(model, ids);
            ids = Arrays.copyOf(ids, ids.length + 1);
            ids[ids.length - 1] = TokenSampler.argMax(logits);
        }
        assertArrayEquals(GREEDY, ids);
        assertTrue(loaded.tokenizer().decode(generated).startsWith("Once upon a time, there was a little girl"));
    }

    @Test
    void validationLossMatchesGolden() throws IOException {
        String text = Files.readString(SharedAssets.file("data/tinystories_valid_head.txt"));
        LossScorer.Score score = LossScorer.score(model, loaded.tokenizer(), text, 511, 12000, 10, LinearLayers.DENSE);
        assertEquals(5110, score.tokens());
        assertEquals(1.3182, score.meanNll(), 0.002);
    }

    /**
     * Hugging Face's conversion permutes q/k rows (per head: w.view(h, hd/2, 2, dim).transpose(1, 2)) so that
     * rotate-half pairs the same values as the interleaved layout: both must give the same logits.
     */
    @Test
    void rotateHalfWithPermutedWeightsEqualsInterleaved() {
        LlamaConfig c = loaded.config();
        Map<String, HostTensor> permuted = new LinkedHashMap<>(loaded.tensors());
        for (int l = 0; l < c.layers(); l++) {
            permuteRows(permuted, ModuleNames.linear(l, "self_attn.q_proj") + ".weight", c.heads(), c.headDim());
            permuteRows(permuted, ModuleNames.linear(l, "self_attn.k_proj") + ".weight", c.kvHeads(), c.headDim());
        }
        LlamaConfig rotateHalf = new LlamaConfig(c.dim(), c.layers(), c.heads(), c.kvHeads(), c.ffnDim(),
                c.vocabSize(), c.contextLength(), c.normEps(), c.ropeTheta(), RopeLayout.ROTATE_HALF,
                c.tiedEmbeddings());
        float[] reference = lastLogits(model, SENTENCE);
        try (LlamaModel hf = LlamaModel.create(rotateHalf, permuted, root, DataType.FLOAT32);
             LlamaModel wrong = LlamaModel.create(rotateHalf, loaded.tensors(), root, DataType.FLOAT32)) {
            assertTrue(maxAbsDiff(reference, lastLogits(hf, SENTENCE)) < 1e-4);
            // the check can fail: the unpermuted weights under rotate-half are far off
            assertTrue(maxAbsDiff(reference, lastLogits(wrong, SENTENCE)) > 0.5);
        }
    }

    private static void permuteRows(Map<String, HostTensor> tensors, String name, int heads, int headDim) {
        HostTensor t = tensors.get(name);
        long[] shape = t.shape();
        int cols = (int) shape[1];
        float[] in = t.toFloats();
        ByteBuffer out = ByteBuffer.allocate(4 * in.length).order(ByteOrder.LITTLE_ENDIAN);
        int half = headDim / 2;
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < 2; j++) {
                for (int i = 0; i < half; i++) {
                    int src = h * headDim + 2 * i + j;
                    for (int col = 0; col < cols; col++) {
                        out.putFloat(in[src * cols + col]);
                    }
                }
            }
        }
        tensors.put(name, new HostTensor(name, shape, HostDType.F32, out.flip()));
    }

    /** Right padding and left padding give the unpadded rows' logits at the real tokens. */
    @Test
    void paddedBatchMatchesUnpaddedRows() {
        int[] a = Arrays.copyOf(GREEDY, 10);
        int[] b = Arrays.copyOfRange(GREEDY, 5, 17);
        int t = 15;
        long[] tokens = new long[2 * t];
        float[] mask = new float[2 * t];
        for (int i = 0; i < a.length; i++) {           // row 0: 10 tokens then 5 pads
            tokens[i] = a[i];
            mask[i] = 1;
        }
        for (int i = 0; i < b.length; i++) {           // row 1: 3 pads then 12 tokens
            tokens[t + 3 + i] = b[i];
            mask[t + 3 + i] = 1;
        }
        try (NDManager scope = root.newSubManager()) {
            Shape shape = new Shape(2, t);
            NDArray batch = model.forward(scope, scope.create(tokens, shape), scope.create(mask, shape),
                    LinearLayers.DENSE);
            NDArray rowA = model.forward(scope, scope.create(Arrays.stream(a).asLongStream().toArray(),
                    new Shape(1, a.length)), null, LinearLayers.DENSE);
            NDArray rowB = model.forward(scope, scope.create(Arrays.stream(b).asLongStream().toArray(),
                    new Shape(1, b.length)), null, LinearLayers.DENSE);
            float[] padded = batch.get("0, :10").toFloatArray();
            assertTrue(maxAbsDiff(rowA.get(0).toFloatArray(), padded) < 1e-4);
            float[] leftPadded = batch.get("1, 3:").toFloatArray();
            assertTrue(maxAbsDiff(rowB.get(0).toFloatArray(), leftPadded) < 1e-4);
            assertFalse(Arrays.equals(padded, rowB.get("0, :10").toFloatArray()), "rows differ");
        }
    }

    @Test
    void float16ComputeIsCloseToFloat32() {
        try (LlamaModel half = LlamaModel.create(loaded, root, DataType.FLOAT16)) {
            assertEquals(DataType.FLOAT16, half.weights().get(ModuleNames.EMBED).getDataType());
            float[] reference = lastLogits(model, SENTENCE);
            float[] f16 = lastLogits(half, SENTENCE);
            assertTrue(maxAbsDiff(reference, f16) < 0.1, "max diff " + maxAbsDiff(reference, f16));
            assertArrayEquals(topK(reference, 3), topK(f16, 3));
            int[] greedy = half.generate(new int[]{1}, 2, GenerationConfig.greedy(15), LinearLayers.DENSE);
            assertArrayEquals(SENTENCE, greedy);
        }
    }

    @Test
    void weightsGainNoArraysOverManyForwardsAndGenerations() {
        int before = model.manager().getManagedArrays().size();
        long[] tokens = Arrays.stream(GREEDY).asLongStream().toArray();
        for (int i = 0; i < 100; i++) {
            try (NDManager scope = root.newSubManager()) {
                model.forward(scope, scope.create(tokens, new Shape(2, 20)), null, LinearLayers.DENSE);
                assertTrue(scope.getManagedArrays().size() > 50, "intermediates land in the scope");
            }
        }
        for (int i = 0; i < 3; i++) {
            model.generate(new int[]{1, 403}, 2, GenerationConfig.greedy(10), LinearLayers.DENSE);
        }
        assertEquals(before, model.manager().getManagedArrays().size());
    }

    @Test
    void samplingIsSeededAndTopPNarrowsToGreedy() {
        GenerationConfig sampled = new GenerationConfig(30, 1.0f, 0.95f, 7);
        int[] first = model.generate(new int[]{1}, 2, sampled, LinearLayers.DENSE);
        assertArrayEquals(first, model.generate(new int[]{1}, 2, sampled, LinearLayers.DENSE));
        int[] other = model.generate(new int[]{1}, 2, new GenerationConfig(30, 1.0f, 0.95f, 8), LinearLayers.DENSE);
        assertFalse(Arrays.equals(first, other), "another seed, another story");
        int[] nucleusOfOne = model.generate(new int[]{1}, 2, new GenerationConfig(20, 1.0f, 1e-6f, 3),
                LinearLayers.DENSE);
        assertArrayEquals(Arrays.copyOf(GREEDY, 20), nucleusOfOne);
    }

    @Test
    void everyBlockLinearGoesThroughTheGivenLayers() {
        java.util.Set<String> seen = new java.util.LinkedHashSet<>();
        LinearLayers recording = (module, x, w) -> {
            seen.add(module);
            return LinearLayers.dense(x, w);
        };
        try (NDManager scope = root.newSubManager()) {
            model.forward(scope, scope.create(new long[]{1, 403}, new Shape(1, 2)), null, recording);
        }
        assertEquals(ModuleNames.allLinears(loaded.config().layers()), java.util.List.copyOf(seen));
    }

    @Test
    void refusesBfloat16ComputeAndBadInputs() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LlamaModel.create(loaded, root, DataType.BFLOAT16));
        assertTrue(e.getMessage().toLowerCase().contains("bfloat16"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> model.generate(new int[]{600}, 2, GenerationConfig.greedy(1), LinearLayers.DENSE));
        try (NDManager scope = root.newSubManager()) {
            assertThrows(IllegalArgumentException.class, () -> model.forward(scope,
                    scope.create(new long[]{1, 2, 3}), null, LinearLayers.DENSE));
        }
        Map<String, HostTensor> missing = new LinkedHashMap<>(loaded.tensors());
        missing.remove(ModuleNames.FINAL_NORM);
        e = assertThrows(IllegalArgumentException.class,
                () -> LlamaModel.create(loaded.config(), missing, root, DataType.FLOAT32));
        assertTrue(e.getMessage().contains(ModuleNames.FINAL_NORM), e.getMessage());
    }

    @Test
    void randomModelsAreSeeded() {
        LlamaConfig c = new LlamaConfig(32, 2, 4, 2, 48, 64, 64, 1e-5f, 10000f, RopeLayout.ROTATE_HALF, true);
        try (LlamaModel m1 = LlamaModel.random(c, 42, root, DataType.FLOAT32);
             LlamaModel m2 = LlamaModel.random(c, 42, root, DataType.FLOAT32);
             LlamaModel m3 = LlamaModel.random(c, 43, root, DataType.FLOAT32)) {
            assertArrayEquals(lastLogits(m1, 5, 6, 7), lastLogits(m2, 5, 6, 7));
            assertNotEquals(Arrays.toString(lastLogits(m1, 5, 6, 7)), Arrays.toString(lastLogits(m3, 5, 6, 7)));
            assertFalse(m1.weights().containsKey(ModuleNames.LM_HEAD));
        }
    }

    /** Autograd through the whole forward pass agrees with central finite differences of the loss. */
    @Test
    void gradientsThroughTheForwardPassMatchFiniteDifferences() {
        String target = ModuleNames.linear(2, "mlp.up_proj");
        long[] ids = {1, 403, 407, 261, 378, 432, 383, 286, 261};
        long[] next = {403, 407, 261, 378, 432, 383, 286, 261, 376};
        int[][] probes = {{0, 0}, {17, 33}, {171, 63}};
        try (NDManager scope = root.newSubManager()) {
            NDArray delta = scope.zeros(new Shape(172, 64));
            delta.setRequiresGradient(true);
            float[] grad;
            try (ai.djl.training.GradientCollector gc =
                         ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                NDArray loss = loss(scope, ids, next, target, delta);
                gc.backward(loss);
                grad = delta.getGradient().toFloatArray();
            }
            double h = 1e-2;
            for (int[] p : probes) {
                float[] step = new float[172 * 64];
                step[p[0] * 64 + p[1]] = (float) h;
                NDArray plus = scope.create(step, new Shape(172, 64));
                double up = loss(scope, ids, next, target, plus).getFloat();
                double down = loss(scope, ids, next, target, plus.neg()).getFloat();
                double numeric = (up - down) / (2 * h);
                assertEquals(numeric, grad[p[0] * 64 + p[1]], 2e-3 + 2e-2 * Math.abs(numeric), "d loss / d " + target
                        + Arrays.toString(p));
            }
            assertTrue(Arrays.stream(probes).anyMatch(p -> Math.abs(grad[p[0] * 64 + p[1]]) > 1e-3),
                    "probed gradients are not all zero");
        }
    }

    /** Summed next-token NLL with {@code delta} added to one linear's weight. */
    private static NDArray loss(NDManager scope, long[] ids, long[] next, String module, NDArray delta) {
        LinearLayers withDelta = (m, x, w) -> LinearLayers.dense(x, m.equals(module) ? delta.add(w) : w);
        NDArray logits = model.forward(scope, scope.create(ids, new Shape(1, ids.length)), null, withDelta);
        return LossScorer.tokenNll(logits, scope.create(next, new Shape(1, next.length))).sum();
    }

    private static float maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        float max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - b[i]));
        }
        return max;
    }
}
