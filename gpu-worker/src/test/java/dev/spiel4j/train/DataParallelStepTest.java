package dev.spiel4j.train;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.data.Batch;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.model.WeightStorage;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.full.FullConfig;
import dev.spiel4j.peft.ia3.Ia3Config;
import dev.spiel4j.peft.lora.LoraConfig;
import dev.spiel4j.peft.sft.DropGrowSchedule;
import dev.spiel4j.peft.sft.SpielConfig;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Data-parallel steps ({@link Trainer#gradientOf} on the replicas that hold the data, {@link Trainer#applyStep} of
 * the parts on every replica) against the single-process {@link Trainer#step} on the same micro-batches: losses,
 * gradient norms, trained tensors and optimizer state bit for bit, on two replicas that each computed other
 * micro-batches (three per step, split unevenly), across reselections and SpIEL-AG's selection phases (whose
 * candidates micro-batch 0 chooses for the others).
 */
class DataParallelStepTest {
    private static final int STEPS = 4;
    private static final int MICRO_BATCHES = 3;
    private static final float LR = 1e-2f;
    private static LoadedModel loaded;
    private static List<List<Batch>> steps;

    @BeforeAll
    static void load() throws IOException {
        loaded = GgufReader.load(SharedAssets.file("model/stories260K.gguf"));
        steps = BitIdenticalStepsTest.steps(loaded, STEPS, MICRO_BATCHES);
    }

    static Stream<MethodConfig> methods() {
        // reselection every 2 steps: steps 2 and 4 drop and grow; SpIEL-AG with a one- and a two-step phase
        return Stream.of(SpielConfig.ag(new Budget.MatchLoraRank(4)).withSchedule(2, 1, 0.5, DropGrowSchedule.Kind.LINEAR),
                SpielConfig.ag(new Budget.MatchLoraRank(4)).withSchedule(2, 2, 0.5, DropGrowSchedule.Kind.LINEAR),
                SpielConfig.ma(new Budget.MatchLoraRank(4)).withSchedule(2, 1, 0.5, DropGrowSchedule.Kind.LINEAR),
                SpielConfig.ma(new Budget.Count(200)).withSchedule(2, 1, 0.5, DropGrowSchedule.Kind.LINEAR),
                LoraConfig.of(4, 8f, 0.1f), Ia3Config.defaults(), FullConfig.defaults());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("methods")
    void replicasSummingTheirPartsEqualOneProcessBitForBit(MethodConfig spec) {
        try (Replica local = new Replica(spec); Replica a = new Replica(spec); Replica b = new Replica(spec)) {
            for (int s = 0; s < STEPS; s++) {
                List<Batch> micro = steps.get(s);
                long tokens = micro.stream().mapToLong(Batch::lossTokens).sum();
                StepResult expected = local.trainer.step(micro, LR);
                // replica a computes micro-batches 0 and 2, replica b micro-batch 1, each with what 0 chose (SpIEL-AG's
                // candidates at a phase's first step), none knowing the others' parts
                MicroBatchGradient first = a.trainer.gradientOf(micro.get(0), 0, tokens, List.of());
                assertEquals(a.trainer.choosesFromFirstMicroBatch(), !first.choices().isEmpty(),
                        "step " + (s + 1) + " says whether micro-batch 0 chooses");
                MicroBatchGradient second = b.trainer.gradientOf(micro.get(1), 1, tokens, first.choices());
                List<MicroBatchGradient> parts = List.of(first, second,
                        a.trainer.gradientOf(micro.get(2), 2, tokens, first.choices()));
                SummedGradient sum = SummedGradient.of(parts);
                for (Replica r : List.of(a, b)) {
                    StepResult got = r.trainer.applyStep(sum, LR);
                    assertTrue(Double.isFinite(expected.gradNorm()), "step " + (s + 1) + ": " + expected);
                    assertEquals(Double.doubleToRawLongBits(expected.loss()), Double.doubleToRawLongBits(got.loss()),
                            "loss of step " + (s + 1) + ": " + expected.loss() + " vs " + got.loss());
                    assertEquals(Double.doubleToRawLongBits(expected.gradNorm()),
                            Double.doubleToRawLongBits(got.gradNorm()), "gradient norm of step " + (s + 1));
                    assertEquals(expected.reselected(), got.reselected(), "reselection at step " + (s + 1));
                }
            }
            for (Replica r : List.of(a, b)) {
                assertEquals(local.trained(), r.trained(), "trained tensors");
                assertEquals(local.state(), r.state(), "optimizer and selector state");
            }
        }
    }

    @Test
    void partsOutOfOrderAreRefused() {
        try (Replica r = new Replica(Ia3Config.defaults())) {
            List<Batch> micro = steps.get(0);
            long tokens = micro.stream().mapToLong(Batch::lossTokens).sum();
            List<MicroBatchGradient> parts = List.of(r.trainer.gradientOf(micro.get(1), 1, tokens, List.of()),
                    r.trainer.gradientOf(micro.get(0), 0, tokens, List.of()));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SummedGradient.of(parts));
            assertTrue(e.getMessage().contains("part 0 of the step is micro-batch 1"), e.getMessage());
        }
    }

    /** A model and method of its own, as a worker process holds them. */
    private static final class Replica implements AutoCloseable {
        final NDManager root = NDManager.newBaseManager();
        final LlamaModel model = LlamaModel.create(loaded, root, DataType.FLOAT32, WeightStorage.DENSE);
        final FineTuningMethod method;
        final Trainer trainer;

        Replica(MethodConfig spec) {
            method = spec.create(model, STEPS * 2);
            trainer = new Trainer(model, method, 1f, 0, BackwardPass.BLOCK_WISE);
        }

        Map<String, ByteBuffer> trained() {
            return BitIdenticalStepsTest.bytes(method.exportTensors());
        }

        Map<String, ByteBuffer> state() {
            return BitIdenticalStepsTest.bytes(method.state().tensors());
        }

        @Override
        public void close() {
            method.close();
            model.close();
            root.close();
        }
    }
}
