package dev.spiel4j.bench;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchSuitesTest {

    @Test
    void quickSuiteComparesEveryMethodAtOneBudget(@TempDir Path dir) {
        BenchSuites.Inputs in = new BenchSuites.Inputs(Path.of("/m/stories260K.gguf"), Path.of("/m/hf"),
                Path.of("/d/batches.json"), dir, 2);
        BenchPlan p = BenchSuites.quick(in, "./spiel4j bench --suite quick");
        assertEquals(BenchSuites.METHODS.size() + BenchSuites.LARGE_METHODS.size(), p.configs().size());
        for (BenchSpec s : p.configs()) {
            BenchSpec.RandomShape shape = s.model().random() != null ? s.model().random() : BenchSuites.STORIES260K;
            // sparse methods get exactly LoRA's parameter count at the same rank
            assertEquals(shape.loraParameters(s.budget().loraRank()), s.budget().deltas(), s.toString());
            assertEquals(2, s.threads());
        }
        assertTrue(Files.exists(dir.resolve("synthetic-32k.json")));
        long big = BenchSuites.llama100M(1).parameters();
        assertTrue(big > 95_000_000 && big < 115_000_000, "about 100M parameters: " + big);
        assertEquals(3, p.sweeps().size());
        assertEquals(BenchSuites.METHODS.size(), p.minimumMemory().size());
        // the size sweep holds the delta count fixed while parameters grow
        BenchPlan.Sweep sizes = p.sweeps().get(1);
        for (int i = 1; i < sizes.x().length; i++) {
            assertTrue(sizes.x()[i] > sizes.x()[i - 1]);
            assertEquals(sizes.specs().get(0).budget().deltas(), sizes.specs().get(i).budget().deltas());
        }
        // the same points again, each less (IA)3's overhead on the same shape
        BenchPlan.Sweep aboveFrozen = p.sweeps().get(2);
        assertEquals(sizes.specs(), aboveFrozen.specs());
        for (int i = 0; i < aboveFrozen.specs().size(); i++) {
            assertEquals("ia3", aboveFrozen.baselines().get(i).method());
            assertEquals(aboveFrozen.specs().get(i).model(), aboveFrozen.baselines().get(i).model());
        }
    }
}
