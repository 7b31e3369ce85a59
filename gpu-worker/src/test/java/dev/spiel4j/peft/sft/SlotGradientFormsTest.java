package dev.spiel4j.peft.sft;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.TargetMatrix;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The three forms of the deltas' gradient ({@link SlotGradientForm}) against Appendix E's sum in float64 on the host,
 * the JVM's form in a SpIEL step, and the rule that picks a form.
 */
class SlotGradientFormsTest {

    @Test
    void everyFormIsAppendixEsSumAtIndicesBeyondFloat32sExactRange() {
        // 5000 x 4000 = 20M weights: flat indices above 2^24; 37 tokens: two full groups of 16 and a tail of 5
        TargetMatrix matrix = new TargetMatrix("model.layers.0.mlp.up_proj", 5000, 4000);
        int tokens = 37;
        int k = 30_000;
        Random rng = new Random(12);
        float[] dy = gaussian(rng, tokens * matrix.rows());
        float[] x = gaussian(rng, tokens * matrix.cols());
        try (NDManager m = NDManager.newBaseManager(); NDManager scope = m.newSubManager()) {
            long[] idx = SparseDelta.random(matrix, k, new SplittableRandom(6), m).indices();
            assertTrue(idx[k - 1] > (1 << 24), "the test needs indices above 2^24");
            NDManager held = m.newSubManager();
            NDArray slots = EngineArrays.of(held, idx);
            NDArray dyArray = EngineArrays.of(scope, dy, new Shape(tokens, matrix.rows()));
            NDArray xArray = EngineArrays.of(scope, x, new Shape(tokens, matrix.cols()));
            HostSlotGradient host = new HostSlotGradient();
            float[] got = host.atSlots(dyArray, xArray, xArray, slots, matrix, scope).toFloatArray();
            float[] again = host.atSlots(dyArray, xArray, xArray, slots, matrix, scope).toFloatArray(); // copy reused
            float[] dense = dyArray.transpose().matMul(xArray).reshape(-1).take(slots).toFloatArray();
            int before = held.getManagedArrays().size();
            float[] gathered = GatheredGradient.atSlots(dyArray, xArray, slots, matrix).toFloatArray();
            assertEquals(before, held.getManagedArrays().size(), "nothing lands in the slots' manager");
            NDArray otherX = xArray.neg();
            float[] other = host.atSlots(dyArray, otherX, otherX, slots, matrix, scope).toFloatArray();
            for (int j = 0; j < k; j++) {
                AppendixESum sum = AppendixESum.at(dy, x, tokens, matrix, idx[j]);
                double exact = sum.exact();
                double bound = sum.float32Bound(tokens, 2);
                assertEquals(exact, got[j], bound, "slot " + j + " (index " + idx[j] + ")");
                assertEquals(exact, dense[j], bound, "dense product at slot " + j);
                assertEquals(exact, gathered[j], bound, "gathered at slot " + j);
                assertEquals(Float.floatToRawIntBits(got[j]), Float.floatToRawIntBits(again[j]), "slot " + j);
                assertEquals(-got[j], other[j], "another input is copied anew, slot " + j);
            }
        }
    }

    @Test
    void aSpielStepOnAMatrixWhereTheHostFormIsCheapestGetsAppendixEsGradient() {
        String module = "model.layers.0.mlp.up_proj";
        TargetMatrix matrix = new TargetMatrix(module, 512, 256);
        int tokens = 40;
        int k = 2000;
        assertEquals(SlotGradientForm.HOST, SlotGradientForm.cheapest(k, matrix, tokens, Device.cpu(), false));
        Random rng = new Random(14);
        float[] w = gaussian(rng, matrix.rows() * matrix.cols());
        float[] x = gaussian(rng, tokens * matrix.cols());
        float[] r = gaussian(rng, tokens * matrix.rows()); // loss = sum(y * R), so dL/dY = R exactly
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray weight = EngineArrays.of(m, w, new Shape(matrix.rows(), matrix.cols()));
            SpielMethod method = new SpielMethod(SpielConfig.ma(new Budget.Count(k)), List.of(matrix),
                    matrix.size(), 100, Map.of(module + ".weight", weight), m);
            long[] idx = method.deltas().get(0).indices();
            float[] g;
            try (NDManager scope = m.newSubManager()) {
                method.beginStep(scope, 1);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray y = method.trainingPass(0, true).apply(module,
                            EngineArrays.of(scope, x, new Shape(tokens, matrix.cols())), weight);
                    gc.backward(y.mul(EngineArrays.of(scope, r, new Shape(tokens, matrix.rows()))).sum());
                }
                method.collectGradients(0, 0);
                g = method.gradients().get(0).toFloatArray();
                method.update(1, 0.1f, 1f);
            }
            for (int j = 0; j < k; j++) {
                AppendixESum sum = AppendixESum.at(r, x, tokens, matrix, idx[j]);
                assertEquals(sum.exact(), g[j], sum.float32Bound(tokens, 2), "slot " + j);
            }
            method.close();
        }
    }

    @Test
    void theCheapestFormFollowsTheMeasuredCosts() {
        TargetMatrix square = new TargetMatrix("m", 768, 768);
        int onePointFivePercent = 8847;
        assertEquals(SlotGradientForm.HOST, SlotGradientForm.cheapest(onePointFivePercent, square, 512, Device.cpu(), false));
        assertEquals(SlotGradientForm.DENSE, SlotGradientForm.cheapest(onePointFivePercent, square, 512, Device.cpu(), true),
                "SpIEL-AG's selection phases need the dense gradient");
        assertEquals(SlotGradientForm.DENSE, SlotGradientForm.cheapest(onePointFivePercent, square, 512, Device.gpu(), false),
                "a GPU's arrays are not copied to the host");
        assertEquals(SlotGradientForm.GATHERED, SlotGradientForm.cheapest(100, square, 512, Device.cpu(), false),
                "a few slots: gathering them beats copying the layer out");
        assertEquals(SlotGradientForm.DENSE, SlotGradientForm.cheapest(300_000, square, 512, Device.cpu(), false),
                "half the matrix: the dense product wins");
        TargetMatrix small = new TargetMatrix("m", 64, 172); // stories260K's MLP: copying out costs more than the product
        assertEquals(SlotGradientForm.DENSE, SlotGradientForm.cheapest(400, small, 512, Device.cpu(), false));
        assertEquals(SlotGradientForm.GATHERED, SlotGradientForm.cheapest(30, small, 512, Device.cpu(), false));
    }

    private static float[] gaussian(Random rng, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rng.nextGaussian();
        }
        return a;
    }
}
