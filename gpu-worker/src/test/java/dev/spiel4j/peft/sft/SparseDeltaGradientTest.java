package dev.spiel4j.peft.sft;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.TargetMatrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The deltas' gradients against two independent references: dense autograd on W' and Appendix E's formula. */
class SparseDeltaGradientTest {
    private static final String MODULE = "model.layers.0.mlp.up_proj";
    private static final int OUT = 6;
    private static final int IN = 5;
    private static final int TOKENS = 7;

    /**
     * @param merged whether the method holds W + delta in the model's weight array ({@link MergedWeight}) or forms a
     *               transient W' per pass (NF4 and float16 bases)
     */
    @ParameterizedTest(name = "merged={0}")
    @ValueSource(booleans = {true, false})
    void deltaGradientsEqualDenseGradientGatheredAndAppendixE(boolean merged) {
        Random rng = new Random(3);
        float[] w = gaussian(rng, OUT * IN);
        float[] x = gaussian(rng, TOKENS * IN);
        float[] r = gaussian(rng, TOKENS * OUT); // loss = sum(y * R), so dL/dY = R exactly
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray weight = m.create(w, new Shape(OUT, IN));
            SpielMethod method = new SpielMethod(SpielConfig.ag(new Budget.Count(9)),
                    List.of(new TargetMatrix(MODULE, OUT, IN)), OUT * IN, 100,
                    merged ? Map.of(MODULE + ".weight", weight) : Map.of(), m);
            SparseDelta delta = method.deltas().get(0);
            assertEquals(9, delta.size());
            long[] idx = delta.indices();
            // Train one step so phi != 0 before measuring (the gradient then depends on W + delta).
            float[] g;
            try (NDManager scope = m.newSubManager()) {
                method.beginStep(scope, 1);
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray y = method.trainingPass(0, true).apply(MODULE, scope.create(x, new Shape(TOKENS, IN)), weight);
                    gc.backward(y.mul(scope.create(r, new Shape(TOKENS, OUT))).sum());
                }
                method.collectGradients(0, 0);
                g = method.gradients().get(0).toFloatArray();
                method.update(1, 0.1f, 1f);
            }
            // Appendix E: g_j = sum_b dY[b, row_j] * X[b, col_j], on the host.
            float[] appendixE = new float[idx.length];
            for (int j = 0; j < idx.length; j++) {
                int row = (int) (idx[j] / IN);
                int col = (int) (idx[j] % IN);
                for (int b = 0; b < TOKENS; b++) {
                    appendixE[j] += r[b * OUT + row] * x[b * IN + col];
                }
            }
            assertArrayEquals(appendixE, g, 1e-4f);

            // Second step with nonzero phi: compare with dense autograd on an explicit W' = W + delta.
            float[] phi = delta.values();
            assertTrue(nonZero(phi), "the first update moved the deltas");
            float[] wPrime = w.clone();
            for (int j = 0; j < idx.length; j++) {
                wPrime[(int) idx[j]] += phi[j];
            }
            float[] dense;
            try (NDManager scope = m.newSubManager()) {
                NDArray wp = scope.create(wPrime, new Shape(OUT, IN));
                wp.setRequiresGradient(true);
                NDArray xs = scope.create(x, new Shape(TOKENS, IN));
                NDArray rs = scope.create(r, new Shape(TOKENS, OUT));
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    gc.backward(xs.matMul(wp.transpose()).mul(rs).sum());
                }
                dense = wp.getGradient().toFloatArray();
                method.beginStep(scope, 2);
                NDArray yMethod;
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    yMethod = method.trainingPass(0, true).apply(MODULE, xs, weight);
                    gc.backward(yMethod.mul(rs).sum());
                }
                method.collectGradients(0, 0);
                assertArrayEquals(xs.matMul(scope.create(wPrime, new Shape(OUT, IN)).transpose()).toFloatArray(),
                        yMethod.toFloatArray(), 1e-5f, "forward uses W + delta");
                g = method.gradients().get(0).toFloatArray();
                method.update(2, 0.1f, 1f);
            }
            float[] gathered = new float[idx.length];
            for (int j = 0; j < idx.length; j++) {
                gathered[j] = dense[(int) idx[j]];
            }
            assertArrayEquals(gathered, g, 1e-5f);
            float[] held = weight.toFloatArray();
            float[] expected = w.clone();
            if (merged) {
                float[] phiNow = delta.values();
                for (int j = 0; j < idx.length; j++) {
                    expected[(int) idx[j]] += phiNow[j];
                }
            }
            assertArrayEquals(expected, held, merged ? "the weight holds W + delta at the slots, W elsewhere"
                    : "a base that is not merged is never modified");
            method.close();
            assertArrayEquals(w, weight.toFloatArray(), "closing the method restores the base bit for bit");
        }
    }

    @Test
    void float16BaseWeightsGetAFloat32DeltaAndKeepTheActivationType() {
        Random rng = new Random(4);
        float[] w = gaussian(rng, OUT * IN);
        float[] x = gaussian(rng, TOKENS * IN);
        try (NDManager m = NDManager.newBaseManager()) {
            SpielMethod method = new SpielMethod(SpielConfig.ma(new Budget.Count(5)),
                    List.of(new TargetMatrix(MODULE, OUT, IN)), OUT * IN, 10, Map.of(), m);
            NDArray weight16 = m.create(w, new Shape(OUT, IN)).toType(ai.djl.ndarray.types.DataType.FLOAT16, false);
            NDArray x16 = m.create(x, new Shape(TOKENS, IN)).toType(ai.djl.ndarray.types.DataType.FLOAT16, false);
            NDArray y = method.apply(MODULE, x16, weight16);
            assertEquals(ai.djl.ndarray.types.DataType.FLOAT16, y.getDataType());
            NDArray ref = m.create(x16.toFloatArray(), new Shape(TOKENS, IN))
                    .matMul(m.create(weight16.toFloatArray(), new Shape(OUT, IN)).transpose());
            assertArrayEquals(ref.toFloatArray(), y.toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray(),
                    1e-2f);
        }
    }

    private static boolean nonZero(float[] a) {
        for (float v : a) {
            if (v != 0) {
                return true;
            }
        }
        return false;
    }

    static float[] gaussian(Random rng, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rng.nextGaussian();
        }
        return a;
    }
}
