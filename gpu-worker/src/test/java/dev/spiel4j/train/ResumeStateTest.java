package dev.spiel4j.train;

import dev.spiel4j.checkpoint.TrainingStateFile;
import dev.spiel4j.data.ShufflePosition;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.MethodSpec;
import dev.spiel4j.peft.MethodState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ResumeStateTest {
    @TempDir
    Path tmp;

    @Test
    void roundTripsEveryTensorWithItsShapeDtypeAndTheDataPosition() {
        MethodState state = new MethodState("lora", 17, Map.of(
                "a", HostArrays.f32("a", new long[]{2, 3}, new float[]{1, 2, 3, 4, 5, -6.5f}),
                "age", HostArrays.i32("age", new int[]{4, 0, 9}),
                "idx", HostArrays.i64("idx", new long[]{1L << 40, 3})));
        Path file = tmp.resolve("state.safetensors");
        new ResumeState(state, new ShufflePosition(2, 5)).save(file);
        ResumeState back = ResumeState.load(file);
        assertEquals(new ShufflePosition(2, 5), back.data());
        assertEquals("lora", back.method().method());
        assertEquals(17, back.method().step());
        assertEquals(state.tensors().keySet(), back.method().tensors().keySet());
        for (HostTensor t : state.tensors().values()) {
            HostTensor b = back.method().require(t.name());
            assertEquals(t.dtype(), b.dtype(), t.name());
            assertArrayEquals(t.shape(), b.shape(), t.name());
            assertEquals(t.data(), b.data(), t.name());
        }
    }

    @Test
    void aShapeThatDoesNotFitItsArrayIsRefusedByName() {
        Map<String, String> meta = new HashMap<>(Map.of("method", "lora", "step", "3", "data.epoch", "0",
                "data.index", "1", "shape.a", "[2, 2]"));
        TrainingStateFile file = new TrainingStateFile(meta, Map.of("a", new float[3]), Map.of(), Map.of());
        String m = assertThrows(IllegalArgumentException.class, () -> ResumeState.fromFile(file)).getMessage();
        assertTrue(m.contains("shape.a") && m.contains("3 elements"), m);
        meta.remove("shape.a");
        String missing = assertThrows(IllegalArgumentException.class,
                () -> ResumeState.fromFile(new TrainingStateFile(meta, Map.of("a", new float[3]), Map.of(), Map.of())))
                .getMessage();
        assertTrue(missing.contains("'shape.a' is missing"), missing);
    }

    @Test
    void optionsRefuseBadValuesByName() {
        MethodSpec lora = TrainingOptions.methodSpec("lora", null, 4, 0f);
        TrainingOptions.Builder ok = TrainingOptions.builder(Path.of("m.gguf"), Path.of("d.jsonl"), lora, tmp);
        assertEquals(7, ok.seed(7).build().method().seed(), "one seed fixes the method too");
        for (var bad : List.<Runnable>of(() -> ok.batch(6, 4).build(), () -> ok.batch(4, 4).steps(0).build(),
                () -> ok.steps(10).lr(-1f).build(), () -> ok.lr(1e-3f).warmupFraction(1).build())) {
            assertThrows(IllegalArgumentException.class, bad::run);
        }
        assertEquals(new Budget.MatchLoraRank(4), TrainingOptions.methodSpec("spiel-ma", null, 4, 0f).budget());
        assertEquals(new Budget.Count(99), TrainingOptions.methodSpec("spiel-ag", new Budget.Count(99), 4, 0f).budget());
        String m = assertThrows(IllegalArgumentException.class,
                () -> TrainingOptions.methodSpec("dora", null, 4, 0f)).getMessage();
        assertTrue(m.contains("dora"), m);
    }
}
