package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchChildTest {
    private static final long MIB = 1024 * 1024;

    static BenchSpec spec(Path batches, String workload, int baseMib, long methodBytes, int steps) {
        BenchSpec.RandomShape shape = new BenchSpec.RandomShape(baseMib, 1, 1, 1, 1, 16, 16, 1e-5, 10000, false, 1);
        return new BenchSpec(workload, new BenchSpec.Model("synthetic-" + baseMib, null, null, shape), "spiel-ag",
                new BenchSpec.Budget(4, 16, 0, methodBytes), "fp32", 1, steps, 2, 1e-3, 0, 7, batches.toString(),
                false);
    }

    private static RunMeasurement runChild(Path dir, String name, long methodBytes, boolean activationCheckpointing) {
        BenchSpec s = spec(dir.resolve("batches.json"), "synthetic", 64, methodBytes, 6)
                .withActivationCheckpointing(activationCheckpointing);
        Path specFile = dir.resolve(name + ".json");
        s.write(specFile);
        ChildRunner.Outcome o = ChildRunner.run(BenchChild.command(s, specFile, "512m"), Duration.ofSeconds(60));
        assertTrue(o.succeeded(), o.failureReason() + "\n" + o.stderrTail());
        return RunMeasurement.fromJson(o.result().orElseThrow());
    }

    /**
     * Two fresh JVMs that differ only in the method's allocation (96 MiB vs none): the overhead the child
     * reports must differ by that allocation, and the base model must be in the RSS after loading.
     */
    @Test
    void measuresMemoryAboveTheBaseAndTimesTheSteps(@TempDir Path dir) {
        BatchFile.synthetic(3, 2, 1, 2, 8, 16).write(dir.resolve("batches.json"));
        RunMeasurement none = runChild(dir, "none", 0, false);
        RunMeasurement big = runChild(dir, "big", 96 * MIB, true);

        assertEquals("spiel4j", big.tool());
        // the result names the configuration it measured, activation checkpointing included
        assertFalse(none.activationCheckpointing());
        assertTrue(big.activationCheckpointing());
        assertEquals(6, big.stepTimesSeconds().length);
        for (double t : big.stepTimesSeconds()) {
            assertTrue(t >= 0.005 && t < 1, "step time " + t);
        }
        assertEquals(16, big.tokensPerStep());
        assertEquals(96 * MIB, big.trainableParams());
        assertEquals(8 * 96 * MIB, big.optimizerStateBytes());
        assertEquals(2, big.warmupSteps());
        // the synthetic loss after 8 steps (2 warm-up + 6) and its eval loss 2/(steps+1)
        assertEquals(1.0 / 8, big.trainLosses()[5], 1e-12);
        assertEquals(2.0 / 9, big.evalLoss().orElseThrow(), 1e-12);
        assertEquals(2.0, big.evalLossInitial().orElseThrow(), 1e-12);
        assertTrue(big.peakRssTrainBytes().isPresent());
        assertTrue(big.rssAfterLoadBytes() > 64 * MIB, "rss after load " + big.rssAfterLoadBytes());
        double diff = (big.overheadBytes() - none.overheadBytes()) / (double) MIB;
        assertEquals(96, diff, 12, "overhead(96 MiB method) - overhead(no method), MiB");
        assertTrue(big.peakRssBytes() >= big.rssAfterLoadBytes() + 90 * MIB);
    }

    @Test
    void reportsBadSpecsAsJsonErrors(@TempDir Path dir) throws Exception {
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"workload\": \"synthetic\", \"method\": \"magic\"}");
        ChildRunner.Outcome o = ChildRunner.run(ChildRunner.javaCommand(BenchChild.class.getName(),
                List.of("-Xmx64m"), List.of(bad.toString())), Duration.ofSeconds(60));
        assertFalse(o.succeeded());
        assertEquals(1, o.exitCode());
        assertTrue(o.failureReason().contains(bad.toString()), o.failureReason());

        BenchSpec unknown = spec(dir.resolve("batches.json"), "no-such-engine", 1, 0, 1);
        BatchFile.synthetic(3, 1, 0, 1, 4, 16).write(dir.resolve("batches.json"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BenchChild.run(unknown));
        assertTrue(e.getMessage().contains("no-such-engine") && e.getMessage().contains("synthetic"), e.getMessage());
    }
}
