package dev.spiel4j.peft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.data.Batch;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.peft.full.FullConfig;
import dev.spiel4j.peft.ia3.Ia3Config;
import dev.spiel4j.peft.lora.LoraConfig;
import dev.spiel4j.peft.registry.MethodRegistry;
import dev.spiel4j.peft.sft.DropGrowSchedule;
import dev.spiel4j.peft.sft.SpielConfig;
import dev.spiel4j.peft.sft.SparseDelta;
import dev.spiel4j.peft.sft.SlotOptimizer;
import dev.spiel4j.peft.sft.SpielMethod;
import dev.spiel4j.train.Trainer;
import dev.spiel4j.train.TinyLm;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MethodsTest {
    private static final int VOCAB = 16;

    @Test
    void budgetIsAFractionOfAllParametersSplitInProportionWithFloor() {
        try (TinyLm model = new TinyLm(VOCAB, 8, 12, 1)) {
            // All params: embed 16*8 + v 8*8 + up 12*8 + down 8*12 + head 16*8 = 512; targets 64 + 96 + 96 = 256.
            assertEquals(512, model.weights().values().stream().mapToLong(a -> a.getShape().size()).sum());
            List<TargetMatrix> targets = TargetMatrix.resolve(model.parameterShapes(), dev.spiel4j.model.ModuleNames.BLOCK_LINEARS);
            assertEquals(List.of(TinyLm.V, TinyLm.UP, TinyLm.DOWN), targets.stream().map(TargetMatrix::module).toList());
            long total = new Budget.Density(0.1).total(targets, 512);
            assertEquals(51, total);
            assertArrayEquals(new int[]{12, 19, 19}, Budget.split(total, targets), "floor(51 * size / 256)");
            assertEquals(2L * (16 + 20 + 20), new Budget.MatchLoraRank(2).total(targets, 512));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Budget.split(257, targets));
            assertTrue(e.getMessage().contains("exceeds"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new Budget.Density(0));
            assertThrows(IllegalArgumentException.class, () -> MethodRegistry.get("dora"));
            assertThrows(IllegalArgumentException.class,
                    () -> TargetMatrix.resolve(model.parameterShapes(), List.of("self_attn.q_proj")));
        }
    }

    @Test
    void ia3StartsAtTheBaseModelAndFullFineTuningChangesTheBaseInPlace() {
        try (TinyLm model = new TinyLm(VOCAB, 8, 12, 1); NDManager scope = model.manager().newSubManager()) {
            NDArray tokens = scope.create(new long[]{1, 2, 3, 4}, new Shape(1, 4));
            float[] base = model.forward(scope, tokens, null, LinearLayers.DENSE).toFloatArray();
            FineTuningMethod ia3 = Ia3Config.defaults().create(model, 5);
            assertEquals(8 + 12, ia3.trainableParameters(), "v output (8) and down input (12); the tiny model has no k");
            assertArrayEquals(base, model.forward(scope, tokens, null, ia3).toFloatArray(), 1e-6f);

            float[] embedBefore = model.weights().get("model.embed_tokens.weight").toFloatArray();
            FineTuningMethod full = FullConfig.defaults().create(model, 5);
            assertEquals(512, full.trainableParameters());
            new Trainer(model, full, 1f).step(TinyLm.rule(VOCAB, 1, 2, 4, 1), 0.01f);
            assertFalse(Arrays.equals(embedBefore, model.weights().get("model.embed_tokens.weight").toFloatArray()),
                    "full fine-tuning updates the embeddings of the model itself");
        }
    }

    @Test
    void spielMaReselectionKeepsInvariantsAndGrowsByAccumulators() {
        List<Batch> data = TinyLm.rule(VOCAB, 2, 4, 6, 3);
        try (TinyLm model = new TinyLm(VOCAB, 8, 12, 2)) {
            SpielMethod ma = (SpielMethod) SpielConfig.ma(new Budget.Density(0.1))
                    .withSchedule(3, 1, 0.5, DropGrowSchedule.Kind.LINEAR).create(model, 12);
            ma.deferSelections();
            Trainer trainer = new Trainer(model, ma, 1f);
            trainer.step(List.of(data.get(0)), 0.05f);
            List<dev.spiel4j.peft.sft.SelectionRequest> requests = ma.pendingSelection();
            assertThrows(IllegalStateException.class, ma::state, "no state is saved while decisions are outstanding");
            ma.applySelection(requests.stream().map(dev.spiel4j.peft.sft.DropGrowSelector::decide).toList());
            assertTrue(ma.pendingSelection().isEmpty());
            assertEquals(List.of(TinyLm.V, TinyLm.UP, TinyLm.DOWN),
                    requests.stream().map(dev.spiel4j.peft.sft.SelectionRequest::module).toList(),
                    "one request per matrix at the step-1 reselection");
            assertEquals(ma.deltas().get(0).size(), requests.get(0).replacements(), "first reselection replaces all");
            // Step 1 is the first reselection: every slot moves to the positions with the largest r_i * c_j.
            for (int i = 0; i < ma.deltas().size(); i++) {
                SparseDelta d = ma.deltas().get(i);
                float[] r = ((SlotOptimizer.Sm3Slots) ma.optimizer()).of(i).rowAccumulator();
                float[] c = ((SlotOptimizer.Sm3Slots) ma.optimizer()).of(i).columnAccumulator();
                long[] idx = d.indices();
                assertEquals(idx.length, Arrays.stream(idx).distinct().count());
                double worstChosen = Double.MAX_VALUE;
                for (long p : idx) {
                    worstChosen = Math.min(worstChosen, (double) r[(int) (p / c.length)] * c[(int) (p % c.length)]);
                }
                double bestOther = 0;
                for (long p = 0; p < d.matrix().size(); p++) {
                    final long q = p;
                    if (Arrays.stream(idx).noneMatch(x -> x == q)) {
                        bestOther = Math.max(bestOther, (double) r[(int) (p / c.length)] * c[(int) (p % c.length)]);
                    }
                }
                assertTrue(worstChosen >= bestOther, d.module() + ": grown positions have the top scores");
            }
            for (int t = 2; t <= 12; t++) {
                trainer.step(List.of(data.get(t % 2)), 0.05f);
                boolean reselection = ma.schedule().isReselection(t);
                assertEquals(reselection, !ma.pendingSelection().isEmpty(), "step " + t);
                if (reselection) {
                    ma.applySelection(ma.pendingSelection().stream()
                            .map(dev.spiel4j.peft.sft.DropGrowSelector::decide).toList());
                }
            }
            for (SparseDelta d : ma.deltas()) {
                assertEquals(d.size(), Arrays.stream(d.indices()).distinct().count());
            }
            // SM3 keeps a float per row and per column, and the grouping of the slots its last step saw (a cell by
            // row and one by column per slot, the index of every occupied row and column); no reselection since then
            long expected = 0;
            for (SparseDelta d : ma.deltas()) {
                int cols = d.matrix().cols();
                long rows = Arrays.stream(d.indices()).map(p -> p / cols).distinct().count();
                long columns = Arrays.stream(d.indices()).map(p -> p % cols).distinct().count();
                expected += 4L * (d.matrix().rows() + cols) + 8L * d.size() + 8L * (rows + columns);
            }
            assertFalse(ma.schedule().isReselection(12));
            assertEquals(expected, ma.optimizerStateBytes());
        }
    }

    @Test
    void spielHoldsItsDeltasInTheBaseWeightsAndClosingRestoresThemBitForBit() {
        List<Batch> data = TinyLm.rule(VOCAB, 3, 2, 5, 6);
        try (TinyLm model = new TinyLm(VOCAB, 8, 12, 3)) {
            Map<String, float[]> before = new java.util.HashMap<>();
            model.weights().forEach((name, w) -> before.put(name, w.toFloatArray()));
            MethodConfig spec = SpielConfig.ag(new Budget.Count(30)).withSchedule(3, 1, 0.5,
                    DropGrowSchedule.Kind.LINEAR);
            FineTuningMethod ag = spec.create(model, 9);
            Trainer trainer = new Trainer(model, ag, 1f);
            for (int t = 1; t <= 7; t++) { // reselections at steps 1, 4 and 7 move slots: dropped slots get W back
                trainer.step(List.of(data.get(t % 2)), 0.05f);
            }
            for (var d : ag.exportDeltas()) {
                float[] expected = before.get(d.module() + ".weight").clone();
                for (int s = 0; s < d.indices().length; s++) {
                    expected[(int) d.indices()[s]] += d.values()[s];
                }
                assertArrayEquals(expected, model.weights().get(d.module() + ".weight").toFloatArray(),
                        d.module() + ": W + delta at the slots, W elsewhere");
            }
            IllegalStateException twice = assertThrows(IllegalStateException.class, () -> spec.create(model, 9));
            assertTrue(twice.getMessage().contains("close that method"), twice.getMessage());
            ag.close();
            before.forEach((name, w) -> assertArrayEquals(w, model.weights().get(name).toFloatArray(), name));
            assertThrows(IllegalStateException.class, () -> trainer.evaluate(List.of(data.get(0))),
                    "a closed method no longer evaluates");
            spec.create(model, 9).close(); // the model is free for another method again
        }
    }

    @Test
    void everyMethodResumesExactlyFromItsState() {
        List<Batch> data = TinyLm.rule(VOCAB, 3, 2, 5, 6);
        List<MethodConfig> specs = List.of(
                SpielConfig.ma(new Budget.Count(30)).withSchedule(3, 1, 0.5, DropGrowSchedule.Kind.LINEAR),
                LoraConfig.of(2, 4f, 0.2f), Ia3Config.defaults(), FullConfig.defaults());
        for (MethodConfig spec : specs) {
            Map<String, HostTensor> straight = run(spec, data, -1);
            Map<String, HostTensor> resumed = run(spec, data, 4);
            assertEquals(straight.keySet(), resumed.keySet());
            straight.forEach((name, t) -> assertEquals(t.data(), resumed.get(name).data(),
                    spec.name() + " " + name + ": identical bytes"));
        }
    }

    private static Map<String, HostTensor> run(MethodConfig spec, List<Batch> data, int stopAt) {
        try (TinyLm model = new TinyLm(VOCAB, 8, 12, 3)) {
            FineTuningMethod m = spec.create(model, 9);
            Trainer trainer = new Trainer(model, m, 1f);
            for (int t = 1; t <= 9; t++) {
                if (t == stopAt + 1) {
                    MethodState state = m.state();
                    m.close(); // a SpIEL method puts the base weights back; a second one is refused until then
                    m = spec.create(model, 9);
                    m.restore(state);
                    trainer = new Trainer(model, m, 1f, state.step());
                }
                trainer.step(List.of(data.get(t % 3)), 0.02f);
            }
            return m.exportTensors();
        }
    }
}
