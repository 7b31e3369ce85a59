package dev.spiel4j.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class EngineArraysTest {

    @Test
    void aPrefixOfHostFloatsLandsInEngineMemoryThatOutlivesTheJavaArray() {
        try (NDManager m = NDManager.newBaseManager()) {
            float[] data = {1.5f, -2f, 3.25f, 99f};
            NDArray a = EngineArrays.of(m, data, 3);
            data[0] = 7f; // the engine array is a copy, not a view of the Java array
            assertArrayEquals(new float[]{1.5f, -2f, 3.25f}, a.toFloatArray());
            assertArrayEquals(new float[]{3f, -4f, 6.5f}, a.add(a).toFloatArray());
        }
    }
}
