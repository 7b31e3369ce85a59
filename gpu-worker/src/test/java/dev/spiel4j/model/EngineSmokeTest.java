package dev.spiel4j.model;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class EngineSmokeTest {
    @Test
    void scatterCarriesGradientsToValues() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray w = m.create(new float[]{1, 2, 3, 4});
            NDArray v = m.create(new float[]{10, 20});
            v.setRequiresGradient(true);
            NDArray idx = m.create(new long[]{1, 3});
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray y = w.scatter(idx, v, 0);
                NDArray loss = y.mul(m.create(new float[]{1, 2, 3, 4})).sum();
                gc.backward(loss);
            }
            assertArrayEquals(new float[]{2, 4}, v.getGradient().toFloatArray());
        }
    }
}
