package dev.spiel4j.train;

import org.junit.jupiter.api.Tag;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.data.Batch;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.ExampleEncoder;
import dev.spiel4j.data.TokenizedData;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.model.WeightStorage;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.sft.SpielConfig;
import dev.spiel4j.peft.lora.LoraConfig;
import dev.spiel4j.peft.ia3.Ia3Config;
import dev.spiel4j.peft.full.FullConfig;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.sft.DropGrowSchedule;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a training step computes must not depend on things that should not matter. Each configuration (every method,
 * float32, float16 and an NF4 base) trains from the same start on the same batches, and every step's loss, gradient
 * norm and gradients, the trained tensors and the optimizer state must be bit for bit the same:
 * <ul>
 *   <li>with and without a "collection torture" between every forward and backward pass (after the model's last
 *   block linear) and between steps: several full collections, then thousands of small direct buffers filled with
 *   NaN, so memory that a collection released is reused at once with poison in it. Before the engine made its arrays
 *   from host data and numbers engine-owned (dev.spiel4j.engine.EngineArrays), autograd kept 0-d arrays over Java
 *   buffers (the attention scale, LoRA's scale, the loss's division) and the tortured runs got NaN or wrong
 *   gradients;</li>
 *   <li>with the backward pass through the whole graph, block by block, and block by block with activation
 *   checkpointing ({@link BackwardPass}): the same arithmetic in another order of segments.</li>
 * </ul>
 */
@Tag("slow")
class BitIdenticalStepsTest {
    private static final int STEPS = 4;
    private static LoadedModel loaded;
    private static List<List<Batch>> steps;

    @BeforeAll
    static void load() throws IOException {
        loaded = GgufReader.load(SharedAssets.file("model/stories260K.gguf"));
        steps = steps(loaded, STEPS, 2);
    }

    /** {@code count} steps of {@code microBatches} micro-batches of two 64-token rows each, from the dolly file. */
    static List<List<Batch>> steps(LoadedModel model, int count, int microBatches) throws IOException {
        List<TokenizedExample> examples = TokenizedData.load(SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl"),
                new ExampleEncoder(model.tokenizer(), 65, ExampleEncoder.Overflow.TRUNCATE)).examples();
        List<List<Batch>> out = new ArrayList<>();
        int next = 0;
        for (int s = 0; s < count; s++) {
            List<Batch> micro = new ArrayList<>();
            for (int m = 0; m < microBatches; m++) {
                micro.add(Batches.pad(examples.subList(next, next + 2), 64));
                next += 2;
            }
            out.add(micro);
        }
        return out;
    }

    static Stream<Arguments> configurations() {
        Budget budget = new Budget.MatchLoraRank(4);
        // reselection every 2 steps with a one-step phase: steps 2 and 4 drop and grow
        MethodConfig ag = SpielConfig.ag(budget).withSchedule(2, 1, 0.5, DropGrowSchedule.Kind.LINEAR);
        MethodConfig ma = SpielConfig.ma(budget).withSchedule(2, 1, 0.5, DropGrowSchedule.Kind.LINEAR);
        MethodConfig lora = LoraConfig.of(4, 8f, 0.1f);
        MethodConfig ia3 = Ia3Config.defaults();
        MethodConfig full = FullConfig.defaults();
        List<Arguments> out = new ArrayList<>();
        // 200 deltas over 35 matrices of >= 4096 weights: the deltas' gradient is gathered (Appendix E), not dense
        MethodConfig sparseMa = SpielConfig.ma(new Budget.Count(200)).withSchedule(2, 1, 0.5,
                DropGrowSchedule.Kind.LINEAR);
        for (MethodConfig spec : List.of(ag, ma, sparseMa, lora, ia3, full)) {
            out.add(Arguments.of(spec, DataType.FLOAT32, WeightStorage.DENSE));
        }
        for (MethodConfig spec : List.of(ag, ma, lora, ia3)) { // full fine-tuning trains float32 weights only
            out.add(Arguments.of(spec, DataType.FLOAT16, WeightStorage.DENSE));
        }
        for (MethodConfig spec : List.of(ag, ma, lora)) {
            out.add(Arguments.of(spec, DataType.FLOAT32, WeightStorage.NF4));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("configurations")
    void collectionsBetweenForwardAndBackwardAndBetweenStepsChangeNothing(MethodConfig spec, DataType compute,
                                                                           WeightStorage storage) {
        Run calm = train(spec, compute, storage, BackwardPass.BLOCK_WISE, false);
        Run tortured = train(spec, compute, storage, BackwardPass.BLOCK_WISE, true);
        assertSameRun(calm, tortured);
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("configurations")
    void blockWiseAndCheckpointedStepsEqualTheWholeGraphStep(MethodConfig spec, DataType compute,
                                                             WeightStorage storage) {
        Run whole = train(spec, compute, storage, BackwardPass.WHOLE_GRAPH, false);
        for (BackwardPass pass : List.of(BackwardPass.BLOCK_WISE, BackwardPass.CHECKPOINTED)) {
            assertSameRun(whole, train(spec, compute, storage, pass, false));
        }
        // the head in chunks of 24 positions, so chunks straddle the micro-batches' two 64-token rows and the last
        // is short; the default keeps all positions of these batches together
        long vocab = loaded.config().vocabSize();
        assertSameRun(whole, train(spec, compute, storage, BackwardPass.BLOCK_WISE, false, 24 * vocab));
        if (!(spec instanceof LoraConfig lora && lora.dropout() > 0)) {
            // evaluation (block by block, head in chunks) against the whole graph's logits at the same values:
            // the first step's loss, taken before any update, from the same batches
            assertEquals(Double.doubleToRawLongBits(whole.results.get(0).loss()),
                    Double.doubleToRawLongBits(whole.evalBefore), "evaluation before training vs step 1's loss: "
                            + whole.evalBefore + " vs " + whole.results.get(0).loss());
        }
    }

    private static void assertSameRun(Run reference, Run other) {
        for (int s = 0; s < STEPS; s++) {
            StepResult a = reference.results.get(s);
            StepResult b = other.results.get(s);
            assertTrue(Double.isFinite(a.gradNorm()), "step " + (s + 1) + " of the reference run: " + a);
            assertEquals(Double.doubleToRawLongBits(a.loss()), Double.doubleToRawLongBits(b.loss()),
                    "loss of step " + (s + 1) + ": " + a.loss() + " vs " + b.loss());
            assertEquals(Double.doubleToRawLongBits(a.gradNorm()), Double.doubleToRawLongBits(b.gradNorm()),
                    "gradient norm of step " + (s + 1) + ": " + a.gradNorm() + " vs " + b.gradNorm());
        }
        assertEquals(reference.gradients.size(), other.gradients.size());
        for (int i = 0; i < reference.gradients.size(); i++) {
            assertEquals(reference.gradients.get(i), other.gradients.get(i), "gradient tensor " + i + " (in step order)");
        }
        assertEquals(reference.trained, other.trained, "trained tensors");
        assertEquals(reference.state, other.state, "optimizer and selector state");
        assertEquals(Double.doubleToRawLongBits(reference.evalBefore), Double.doubleToRawLongBits(other.evalBefore),
                "evaluation before the steps: " + reference.evalBefore + " vs " + other.evalBefore);
        assertEquals(Double.doubleToRawLongBits(reference.evalLoss), Double.doubleToRawLongBits(other.evalLoss),
                "evaluation after the steps (its head chunked as the run's): " + reference.evalLoss + " vs "
                        + other.evalLoss);
    }

    private record Run(List<StepResult> results, List<ByteBuffer> gradients, Map<String, ByteBuffer> trained,
                       Map<String, ByteBuffer> state, double evalBefore, double evalLoss) {
    }

    private static Run train(MethodConfig spec, DataType compute, WeightStorage storage, BackwardPass pass,
                             boolean torture) {
        return train(spec, compute, storage, pass, torture, Long.MAX_VALUE);
    }

    private static Run train(MethodConfig spec, DataType compute, WeightStorage storage, BackwardPass pass,
                             boolean torture, long headChunkLogits) {
        try (NDManager root = NDManager.newBaseManager();
             LlamaModel model = LlamaModel.create(loaded, root, compute, storage);
             FineTuningMethod inner = spec.create(model, 8)) {
            String lastLinear = ModuleNames.linear(loaded.config().layers() - 1, "mlp.down_proj");
            Disturbing method = new Disturbing(inner, torture ? lastLinear : null);
            Trainer trainer = new Trainer(model, method, 1f, 0, pass, headChunkLogits);
            List<StepResult> results = new ArrayList<>();
            double evalBefore = trainer.evaluate(steps.get(0));
            for (List<Batch> micro : steps) {
                if (torture) {
                    Disturbing.torture();
                }
                results.add(trainer.step(micro, 1e-2f));
            }
            MethodState state = inner.state();
            double evalLoss = trainer.evaluate(steps.get(0));
            return new Run(results, method.recorded, bytes(inner.exportTensors()), bytes(state.tensors()), evalBefore,
                    evalLoss);
        }
    }

    static Map<String, ByteBuffer> bytes(Map<String, HostTensor> tensors) {
        Map<String, ByteBuffer> out = new java.util.TreeMap<>();
        tensors.forEach((name, t) -> out.put(name, t.data().duplicate().rewind()));
        return out;
    }

    /** Delegates to a method; tortures the JVM's memory after one module's forward; records every gradient read. */
    private static final class Disturbing implements FineTuningMethod {
        private final FineTuningMethod inner;
        private final String tortureAfter;
        final List<ByteBuffer> recorded = new ArrayList<>();

        Disturbing(FineTuningMethod inner, String tortureAfter) {
            this.inner = inner;
            this.tortureAfter = tortureAfter;
        }

        /** Collections until nothing more is freed, then fresh direct buffers over the freed native memory. */
        static void torture() {
            System.gc();
            System.gc();
            List<ByteBuffer> poison = new ArrayList<>();
            for (int i = 0; i < 10_000; i++) {
                ByteBuffer b = ByteBuffer.allocateDirect(4 * (1 + i % 16)).order(ByteOrder.nativeOrder());
                while (b.remaining() >= 4) {
                    b.putFloat(Float.NaN);
                }
                poison.add(b);
            }
            poison.clear();
        }

        @Override
        public NDArray apply(String module, NDArray x, NDArray weight) {
            return inner.apply(module, x, weight);
        }

        @Override
        public LinearLayers trainingPass(int microBatch, boolean recordGradients) {
            LinearLayers pass = inner.trainingPass(microBatch, recordGradients);
            return (module, x, weight) -> {
                NDArray y = pass.apply(module, x, weight);
                if (module.equals(tortureAfter)) {
                    torture();
                }
                return y;
            };
        }

        @Override
        public List<NDArray> gradients() {
            List<NDArray> gradients = inner.gradients();
            for (NDArray g : gradients) {
                recorded.add(ByteBuffer.wrap(g.toType(DataType.FLOAT32, false).toByteArray()));
            }
            return gradients;
        }

        @Override
        public void useGradients(List<NDArray> summed) {
            inner.useGradients(summed);
        }

        @Override
        public String name() {
            return inner.name();
        }

        @Override
        public long trainableParameters() {
            return inner.trainableParameters();
        }

        @Override
        public long optimizerStateBytes() {
            return inner.optimizerStateBytes();
        }

        @Override
        public void beginStep(NDManager scope, int step) {
            inner.beginStep(scope, step);
        }

        @Override
        public void collectGradients(int block, int microBatch) {
            inner.collectGradients(block, microBatch);
        }

        @Override
        public boolean otherStatisticsFinite() {
            return inner.otherStatisticsFinite();
        }

        @Override
        public boolean update(int step, float lr, float gradScale) {
            return inner.update(step, lr, gradScale);
        }

        @Override
        public void abortStep() {
            inner.abortStep();
        }

        @Override
        public List<DeltaTensor> exportDeltas() {
            return inner.exportDeltas();
        }

        @Override
        public Map<String, HostTensor> exportTensors() {
            return inner.exportTensors();
        }

        @Override
        public MethodState state() {
            return inner.state();
        }

        @Override
        public void restore(MethodState state) {
            inner.restore(state);
        }
    }
}
