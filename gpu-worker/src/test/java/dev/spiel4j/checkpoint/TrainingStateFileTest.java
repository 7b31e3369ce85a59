package dev.spiel4j.checkpoint;

import dev.spiel4j.io.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingStateFileTest {
    @TempDir
    Path dir;

    @Test
    void roundTripsArraysAndMetadata() {
        TrainingStateFile state = new TrainingStateFile(Map.of("step", "120", "optimizer", "adamw"),
                Map.of("q.m", new float[]{1.5f, -0f, Float.MIN_VALUE}, "q.v", new float[]{}),
                Map.of("q.age", new int[]{0, 7, Integer.MAX_VALUE}),
                Map.of("data.position", new long[]{Long.MIN_VALUE, 42}));
        Path p = dir.resolve("state.safetensors");
        state.save(p);
        TrainingStateFile back = TrainingStateFile.load(p);
        assertEquals(state.metadata(), back.metadata());
        assertArrayEquals(state.floats("q.m"), back.floats("q.m"), 0f);
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(back.floats("q.m")[1]));
        assertEquals(0, back.floats("q.v").length);
        assertArrayEquals(state.ints("q.age"), back.ints("q.age"));
        assertArrayEquals(state.longs("data.position"), back.longs("data.position"));
        assertEquals(state.floats().keySet(), back.floats().keySet());
    }

    @Test
    void isImmutableAndRefusesClashingNames() {
        float[] m = {1, 2};
        TrainingStateFile state = new TrainingStateFile(Map.of(), Map.of("a", m), Map.of(), Map.of());
        m[0] = 9;
        state.floats("a")[1] = 9;
        assertArrayEquals(new float[]{1, 2}, state.floats("a"), 0f);
        assertThrows(IllegalArgumentException.class,
                () -> new TrainingStateFile(Map.of(), Map.of("a", m), Map.of("a", new int[1]), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> state.ints("a"));
    }

    @Test
    void refusesOtherFiles() {
        Path p = dir.resolve("sft.safetensors");
        new SparseFineTuning("sha256:a", "m", Map.of(),
                List.of(new DeltaTensor("x", 2, 2, new long[]{1}, new float[]{1}))).save(p);
        String msg = assertThrows(ModelFormatException.class, () -> TrainingStateFile.load(p)).getMessage();
        assertTrue(msg.contains("expected 'training-state'"), msg);
    }
}
