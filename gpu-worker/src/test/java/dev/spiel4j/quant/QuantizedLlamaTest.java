package dev.spiel4j.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.data.Batch;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.LossScorer;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.model.RopeLayout;
import dev.spiel4j.model.WeightStorage;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.sft.SpielConfig;
import dev.spiel4j.peft.full.FullConfig;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.sft.AccumulatedGradients;
import dev.spiel4j.peft.sft.SpielMethod;
import dev.spiel4j.train.StepResult;
import dev.spiel4j.train.Trainer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** qSpIEL on stories260K.gguf: block linears as NF4, dequantized on use, trained with SpIEL-AG. */
class QuantizedLlamaTest {
    /** golden/README.md: validation loss of the float weights. */
    private static final double GOLDEN_LOSS = 1.3182;
    /**
     * Measured 1.4340 with NF4 block linears (1.4345 with exact absmax constants, so double quantization costs
     * nothing here); a 260K-parameter model with 64-wide rows loses more to 4 bits than a large one.
     */
    private static final double NF4_LOSS_LIMIT = 1.45;
    private static NDManager root;
    private static LoadedModel loaded;
    private static LlamaModel nf4;

    @BeforeAll
    static void load() {
        root = NDManager.newBaseManager();
        loaded = GgufReader.load(SharedAssets.file("model/stories260K.gguf"));
        nf4 = LlamaModel.create(loaded, root, DataType.FLOAT32, WeightStorage.NF4);
    }

    @AfterAll
    static void close() {
        nf4.close();
        root.close();
    }

    @Test
    void blockLinearsTakeAboutAnEighthOfTheirFloat32Bytes() {
        long f32 = 0;
        long q = 0;
        for (String module : ModuleNames.allLinears(loaded.config().layers())) {
            HostTensor w = loaded.tensors().get(module + ".weight");
            f32 += 4 * w.numel();
            Nf4Tensor t = Nf4Tensor.quantize(module, w.toFloats(), w.shape());
            assertEquals(t.packedCodes().length + t.absmaxCodes().length + 4L * t.absmaxScales().length + 4, t.bytes());
            q += t.bytes();
        }
        System.out.printf("stories260K block linears: %d bytes float32, %d bytes NF4 (%.2f bits per weight)%n",
                f32, q, 8.0 * q / (f32 / 4));
        assertTrue(q * 7 < f32 && q * 8 > f32, "4 bits plus about 0.13 bits of constants per weight: " + q);

        LlamaConfig llama2 = new LlamaConfig(4096, 32, 32, 32, 11008, 32000, 4096, 1e-5f, 10000f,
                RopeLayout.ROTATE_HALF, false);
        long params = 0;
        long nf4 = 0;
        for (String module : ModuleNames.allLinears(llama2.layers())) {
            long[] shape = llama2.tensorShapes().get(module + ".weight");
            params += shape[0] * shape[1];
            nf4 += Nf4Tensor.storageBytes(shape[0] * shape[1]);
        }
        System.out.printf("LLaMA-2-7B block linears: %d bytes float32, %d bytes NF4%n", 4 * params, nf4);
        assertEquals(6_476_005_376L, params);
        assertEquals(4.127, 8.0 * nf4 / params, 1e-3);
    }

    @Test
    void weightsHoldOnlyDenseTensorsWhileShapesCoverAll() {
        assertEquals(WeightStorage.NF4, nf4.weightStorage());
        assertTrue(nf4.weights().containsKey(ModuleNames.EMBED));
        assertTrue(nf4.weights().containsKey(ModuleNames.attnNorm(0)));
        assertFalse(nf4.weights().containsKey(ModuleNames.linear(0, "self_attn.q_proj") + ".weight"));
        assertEquals(loaded.config().tensorShapes().keySet(), nf4.parameterShapes().keySet());
        assertEquals(new Shape(loaded.config().ffnDim(), loaded.config().dim()),
                nf4.parameterShapes().get(ModuleNames.linear(2, "mlp.up_proj") + ".weight"));
        assertThrows(IllegalArgumentException.class, () -> FullConfig.defaults().create(nf4, 1));
    }

    /** The reference for qSpIEL: a dense model whose block linears are the host-dequantized NF4 weights. */
    private static LlamaModel denseOfDequantized() {
        Map<String, HostTensor> dequantized = new LinkedHashMap<>(loaded.tensors());
        for (String module : ModuleNames.allLinears(loaded.config().layers())) {
            HostTensor w = loaded.tensors().get(module + ".weight");
            float[] values = Nf4Tensor.quantize(module, w.toFloats(), w.shape()).dequantize();
            ByteBuffer data = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
            data.asFloatBuffer().put(values);
            dequantized.put(module + ".weight", new HostTensor(module + ".weight", w.shape(), HostDType.F32, data));
        }
        return LlamaModel.create(loaded.config(), dequantized, root, DataType.FLOAT32);
    }

    @Test
    void forwardEqualsDenseModelOfDequantizedWeightsAndLeavesNothingBehind() {
        long[] tokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
        int arrays = nf4.manager().getManagedArrays().size();
        try (LlamaModel reference = denseOfDequantized()) {
            for (int round = 0; round < 5; round++) {
                try (NDManager scope = root.newSubManager()) {
                    NDArray ids = scope.create(tokens, new Shape(1, tokens.length));
                    float[] expected = reference.forward(scope, ids, null, LinearLayers.DENSE).toFloatArray();
                    float[] actual = nf4.forward(scope, ids, null, LinearLayers.DENSE).toFloatArray();
                    assertArrayEquals(expected, actual, 1e-5f);
                }
                assertEquals(arrays, nf4.manager().getManagedArrays().size(), "a forward pass leaks into the model");
            }
        }
    }

    @Test
    void float16ComputeGetsItsWeightsInFloat16() {
        long[] tokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
        try (LlamaModel half = LlamaModel.create(loaded, root, DataType.FLOAT16, WeightStorage.NF4);
             NDManager scope = root.newSubManager()) {
            NDArray ids = scope.create(tokens, new Shape(1, tokens.length));
            DataType[] seen = new DataType[1];
            LinearLayers recording = (module, x, w) -> {
                seen[0] = w.getDataType();
                return LinearLayers.dense(x, w);
            };
            float[] h = half.forward(scope, ids, null, recording).toFloatArray();
            float[] f = nf4.forward(scope, ids, null, LinearLayers.DENSE).toFloatArray();
            assertEquals(DataType.FLOAT16, seen[0]);
            float max = 0;
            for (int i = 0; i < f.length; i++) {
                max = Math.max(max, Math.abs(h[i] - f[i]));
            }
            assertTrue(max < 0.05, "float16 logits within rounding of float32: " + max);
        }
    }

    @Test
    void validationLossStaysCloseToTheFloatModel() throws IOException {
        String text = Files.readString(SharedAssets.file("data/tinystories_valid_head.txt"));
        LossScorer.Score score = LossScorer.score(nf4, loaded.tokenizer(), text, 511, 12000, 10, LinearLayers.DENSE);
        System.out.printf("stories260K validation loss: NF4 block linears %.4f, float %.4f%n", score.meanNll(),
                GOLDEN_LOSS);
        assertEquals(5110, score.tokens());
        assertTrue(score.meanNll() > GOLDEN_LOSS && score.meanNll() < NF4_LOSS_LIMIT, "NF4 loss " + score.meanNll());
    }

    /**
     * qSpIEL is SpIEL on {@code DEQUANT(W_nf4) + Delta}: step for step the same losses as SpIEL-AG on the dense
     * reference model, and the loss goes down. The two runs are separate computations whose gradients can differ in
     * the last bits (the engine's BLAS is not bitwise repeatable across runs), so the losses are compared to 1e-3;
     * after a reselection a near-tie at the k-th candidate may flip, so only the steps up to the first reselection
     * are compared.
     */
    @Test
    void spielAgStepsOnNf4ReduceTheLossExactlyAsOnTheDequantizedWeights() throws IOException {
        List<Batch> batches = batches(Files.readString(SharedAssets.file("data/tinystories_valid_head.txt")), 4, 64);
        int steps = 12;
        MethodConfig spec = SpielConfig.ag(new Budget.Density(0.02)).withSeed(5);
        FineTuningMethod method = spec.create(nf4, steps);
        assertInstanceOf(AccumulatedGradients.class, assertInstanceOf(SpielMethod.class, method).growth());
        Trainer trainer = new Trainer(nf4, method, 1f);
        double before = trainer.evaluate(batches);
        int arrays = nf4.manager().getManagedArrays().size();
        List<StepResult> results = new ArrayList<>();
        try (LlamaModel reference = denseOfDequantized()) {
            Trainer referenceTrainer = new Trainer(reference, spec.create(reference, steps), 1f);
            boolean reselected = false;
            for (int t = 0; t < steps; t++) {
                List<Batch> step = List.of(batches.get(t % batches.size()));
                StepResult r = trainer.step(step, 3e-3f);
                StepResult ref = referenceTrainer.step(step, 3e-3f);
                if (!reselected) {
                    assertEquals(ref.loss(), r.loss(), 1e-3, "step " + (t + 1));
                }
                reselected |= r.reselected();
                results.add(r);
            }
        }
        double after = trainer.evaluate(batches);
        System.out.printf("SpIEL-AG on NF4: loss %.4f -> %.4f after %d steps%n", before, after, steps);
        assertTrue(after < before - 0.02, "training on NF4 lowers the loss: " + before + " -> " + after);
        assertTrue(results.stream().anyMatch(StepResult::reselected), "drop/grow ran on the NF4 model");
        assertEquals(arrays, nf4.manager().getManagedArrays().size(), "training steps leak into the model");
    }

    /** Consecutive [size, seqLen] batches of BOS + text tokens, loss on every next token. */
    private static List<Batch> batches(String text, int size, int seqLen) {
        int[] ids = loaded.tokenizer().encode(text.replace("\n\n", "\n"));
        List<Batch> out = new ArrayList<>();
        int rows = ids.length / seqLen;
        for (int first = 0; first + size <= Math.min(rows, 4 * size); first += size) {
            long[] inputs = new long[size * seqLen];
            long[] targets = new long[size * seqLen];
            for (int r = 0; r < size; r++) {
                int start = (first + r) * seqLen;
                inputs[r * seqLen] = loaded.tokenizer().bosId();
                for (int i = 0; i < seqLen; i++) {
                    if (i > 0) {
                        inputs[r * seqLen + i] = ids[start + i - 1];
                    }
                    targets[r * seqLen + i] = ids[start + i];
                }
            }
            float[] ones = new float[size * seqLen];
            Arrays.fill(ones, 1f);
            List<String> rowIds = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                rowIds.add("row " + (first + r));
            }
            out.add(new Batch(size, seqLen, inputs, targets, ones, ones.clone(), rowIds));
        }
        return out;
    }
}
