package dev.spiel4j.bench;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchSuitesTest {

    private static BenchSuites.Inputs inputs(Path dir) {
        return new BenchSuites.Inputs(Path.of("/m/stories260K.gguf"), Path.of("/m/hf"), Path.of("/d/batches.json"), dir,
                2);
    }

    /** "model/method/dtype" -> how many configurations without and with activation checkpointing. */
    private static Map<String, List<Boolean>> settings(BenchPlan p) {
        Map<String, List<Boolean>> out = new TreeMap<>();
        for (BenchSpec s : p.configs()) {
            out.computeIfAbsent(s.model().name() + "/" + s.method() + "/" + s.dtype(), k -> new ArrayList<>())
                    .add(s.activationCheckpointing());
        }
        return out;
    }

    @Test
    void quickSuiteComparesEveryMethodAtOneBudget(@TempDir Path dir) {
        BenchPlan p = BenchSuites.quick(inputs(dir), "./spiel4j bench --suite quick");
        // every method on stories260K, and the large shape's methods on a float32 and an NF4 base
        assertEquals(2 * (BenchSuites.METHODS.size() + 2 * BenchSuites.LARGE_METHODS.size()), p.configs().size());
        for (BenchSpec s : p.configs()) {
            BenchSpec.RandomShape shape = s.model().random() != null ? s.model().random() : BenchSuites.STORIES260K;
            // sparse methods get exactly LoRA's parameter count at the same rank
            assertEquals(shape.loraParameters(s.budget().loraRank()), s.budget().deltas(), s.toString());
            assertEquals(2, s.threads());
        }
        assertTrue(Files.exists(dir.resolve("synthetic-32k.json")));
        assertTrue(Files.exists(dir.resolve("synthetic-32k-512.json")));
        long big = BenchSuites.llama100M(1).parameters();
        assertTrue(big > 95_000_000 && big < 115_000_000, "about 100M parameters: " + big);
        assertEquals("llama-100M", p.targetModel());
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

    /**
     * Every per-method configuration runs once without and once with activation checkpointing, identical
     * otherwise; sweeps and bisections run without.
     */
    @Test
    void everyConfigurationRunsInBothCheckpointingSettings(@TempDir Path dir) {
        for (BenchPlan p : List.of(BenchSuites.quick(inputs(dir), "quick"), BenchSuites.full(inputs(dir), "full"))) {
            Map<String, List<Boolean>> settings = settings(p);
            for (Map.Entry<String, List<Boolean>> e : settings.entrySet()) {
                assertEquals(List.of(false, true), e.getValue(), p.suite() + ": " + e.getKey());
            }
            for (BenchSpec s : p.configs()) {
                if (!s.activationCheckpointing()) {
                    assertTrue(p.configs().contains(s.withActivationCheckpointing(true)), s.toString());
                }
            }
            for (String method : BenchSuites.METHODS) {
                assertTrue(settings.containsKey("stories260K/" + method + "/fp32"), p.suite() + ": " + method);
            }
            for (String method : BenchSuites.LARGE_METHODS) {
                assertTrue(settings.containsKey("llama-100M/" + method + "/fp32"), p.suite() + ": " + method);
                // qLoRA, qSpIEL-AG and qSpIEL-MA beside them, as the paper's Table 3
                assertTrue(settings.containsKey("llama-100M/" + method + "/nf4"), p.suite() + ": q" + method);
            }
            for (BenchPlan.Sweep sw : p.sweeps()) {
                sw.specs().forEach(s -> assertFalse(s.activationCheckpointing(), sw.name()));
                sw.baselines().forEach(s -> assertFalse(s.activationCheckpointing(), sw.name()));
            }
            p.minimumMemory().forEach(s -> assertFalse(s.activationCheckpointing(), s.toString()));
        }
    }

    @Test
    void fullSuiteAddsTheLargestShapeWithLoraAndBothSpielMethods(@TempDir Path dir) {
        BenchSpec.RandomShape largest = BenchSuites.llama350M(1);
        long params = largest.parameters();
        // embedding and head 2 * 32000 * 1024, 22 blocks of 4 * 1024^2 + 3 * 1024 * 2816 + 2 * 1024, final norm
        assertEquals(2L * 32000 * 1024 + 22L * (4L * 1024 * 1024 + 3L * 1024 * 2816 + 2048) + 1024, params);
        assertTrue(params > 340_000_000 && params < 360_000_000, "about 350M parameters: " + params);

        Map<String, List<Boolean>> full = settings(BenchSuites.full(inputs(dir), "full"));
        List<String> largestRows = full.keySet().stream().filter(k -> k.startsWith("llama-350M/")).toList();
        assertEquals(List.of("llama-350M/lora/fp32", "llama-350M/spiel-ag/fp32", "llama-350M/spiel-ma/fp32"),
                largestRows);
        BenchSpec ag = BenchSuites.full(inputs(dir), "full").configs().stream()
                .filter(s -> s.model().name().equals("llama-350M") && s.method().equals("spiel-ag")).findFirst()
                .orElseThrow();
        assertEquals(largest, ag.model().random());
        assertEquals(largest.loraParameters(ag.budget().loraRank()), ag.budget().deltas());
        // the peer runs beside every LoRA configuration, so the 350M shape has its PEFT LoRA in both settings
        assertTrue(BenchSpec.PEER_METHODS.contains("lora"));
        assertFalse(settings(BenchSuites.quick(inputs(dir), "quick")).keySet().stream()
                .anyMatch(k -> k.startsWith("llama-350M/")), "the quick suite stays without the 350M shape");
    }
}
