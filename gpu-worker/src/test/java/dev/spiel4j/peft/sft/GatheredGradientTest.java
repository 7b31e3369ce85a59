package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.peft.TargetMatrix;
import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Appendix E's gathered gradient against a float64 host sum and against the dense product read at the slots. */
class GatheredGradientTest {

    @Test
    void gatheredGradientIsAppendixEsSumAtIndicesBeyondFloat32sExactRange() {
        // 5000 x 4000 = 20M weights: flat indices above 2^24 (16.7M) would be rounded by float32 index arithmetic
        TargetMatrix matrix = new TargetMatrix("model.layers.0.mlp.up_proj", 5000, 4000);
        int tokens = 6;
        int k = 3000;
        Random rng = new Random(11);
        float[] dy = gaussian(rng, tokens * matrix.rows());
        float[] x = gaussian(rng, tokens * matrix.cols());
        try (NDManager m = NDManager.newBaseManager(); NDManager held = m.newSubManager();
             NDManager scope = m.newSubManager()) {
            long[] idx = SparseDelta.random(matrix, k, new SplittableRandom(5), m).indices();
            assertTrue(idx[k - 1] > (1 << 24), "the test needs indices above 2^24");
            NDArray slots = EngineArrays.of(held, idx);
            NDArray dyArray = EngineArrays.of(scope, dy, new Shape(tokens, matrix.rows()));
            NDArray xArray = EngineArrays.of(scope, x, new Shape(tokens, matrix.cols()));
            int before = held.getManagedArrays().size();
            float[] gathered = GatheredGradient.atSlots(dyArray, xArray, slots, matrix).toFloatArray();
            assertEquals(before, held.getManagedArrays().size(), "nothing lands in the slots' manager");
            float[] dense = dyArray.transpose().matMul(xArray).reshape(-1).take(slots).toFloatArray();
            for (int j = 0; j < k; j++) {
                AppendixESum sum = AppendixESum.at(dy, x, tokens, matrix, idx[j]);
                double exact = sum.exact();
                double bound = sum.float32Bound(tokens, 8);
                assertEquals(exact, gathered[j], bound, "slot " + j + " (index " + idx[j] + ")");
                assertEquals(exact, dense[j], bound, "dense product at slot " + j);
            }
        }
    }

    private static float[] gaussian(Random rng, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rng.nextGaussian();
        }
        return a;
    }
}
