package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.StreamSupport;
import java.util.OptionalDouble;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchReportTest {
    private static final long MIB = 1024 * 1024;

    /** A measurement with median step time {@code median} s and {@code overheadMib} MiB above a 100 MiB load. */
    static RunMeasurement m(String tool, String method, double median, long overheadMib) {
        return m(tool, "tiny", method, false, median, overheadMib);
    }

    static RunMeasurement m(String tool, String model, String method, boolean checkpointing, double median,
                            long overheadMib) {
        return new RunMeasurement(tool, model, method, checkpointing, "fp32", 2, 1000, 4 * MIB, 8000, 512, 2,
                new double[]{median * 1.2, median, median * 0.9}, new double[]{2, 1.5, 1.2}, OptionalDouble.of(3.0),
                OptionalDouble.of(1.25), 100 * MIB, 110 * MIB, OptionalLong.of((100 + overheadMib) * MIB),
                Math.max(110, 100 + overheadMib) * MIB);
    }

    private static BenchReport report() {
        List<BenchReport.Run> runs = List.of(
                new BenchReport.Run("tiny", "lora", false, m("spiel4j", "lora", 0.2, 40)),
                new BenchReport.Run("tiny", "spiel-ag", false, m("spiel4j", "spiel-ag", 0.21, 30)));
        List<BenchReport.Run> peer = List.of(new BenchReport.Run("tiny", "lora", false,
                m("python-peft", "lora", 0.25, 80)));
        BenchReport.Sweep sweep = new BenchReport.Sweep("overhead vs deltas", "deltas", "overhead MB",
                List.of("d1", "d2", "d3"), new double[]{1e5, 2e5, 4e5}, new double[]{11, 12, 14});
        MinimumMemorySearch.Result min = new MinimumMemorySearch(MIB, 20).search(0, 512 * MIB, c -> c >= 300 * MIB);
        return new BenchReport("quick", "./spiel4j bench --suite quick", "test machine", null, runs,
                List.of(new BenchReport.Failure("tiny", "ia3", false, "exit 1: boom | bad")), peer, "ran", List.of(sweep),
                List.of(new BenchReport.MinimumMemory("tiny", "lora", 30, min, ChildRunner.Enforcement.CGROUP_V1)));
    }

    @Test
    void measurementDerivesMedianThroughputAndOverhead() {
        RunMeasurement r = m("spiel4j", "lora", 0.2, 40);
        assertEquals(0.2, r.stepTimes().median(), 1e-12);
        assertEquals(512 / 0.2, r.tokensPerSecond(), 1e-9);
        assertEquals(40 * MIB, r.overheadBytes());
    }

    @Test
    void jsonHasTheIssueShapeAndRatios() {
        ObjectNode j = report().json();
        assertEquals("quick", j.get("suite").asText());
        assertEquals("ran", j.get("peer").asText());
        JsonNode ag = j.get("results").get(1);
        for (String key : List.of("model", "method", "trainable_params", "step_time_median_s", "tokens_per_s",
                "peak_rss_mb", "overhead_mb", "eval_loss", "step_time_vs_lora", "overhead_vs_lora",
                "step_time_vs_peer_lora")) {
            assertTrue(ag.has(key), "result lacks " + key);
        }
        assertEquals(List.of(0.252, 0.21, 0.189), StreamSupport.stream(ag.get("step_times_s").spliterator(), false)
                .map(JsonNode::asDouble).map(t -> Math.round(t * 1000) / 1000.0).toList(), "every measured step");
        assertEquals("spiel-ag", ag.get("method").asText());
        assertFalse(ag.get("activation_checkpointing").asBoolean());
        assertTrue(ag.get("activation_checkpointing").isBoolean());
        assertFalse(j.has("targets"));
        assertEquals(0.21 / 0.2, ag.get("step_time_vs_lora").asDouble(), 1e-12);
        assertEquals(30.0 / 40.0, ag.get("overhead_vs_lora").asDouble(), 1e-12);
        assertEquals(0.21 / 0.25, ag.get("step_time_vs_peer_lora").asDouble(), 1e-12);
        assertEquals(30.0, ag.get("overhead_mb").asDouble(), 1e-12);
        assertEquals(1.0, j.get("results").get(0).get("step_time_vs_lora").asDouble(), 1e-12);
        JsonNode sweep = j.get("scaling").get(0);
        // points (1e5, 11), (2e5, 12), (4e5, 14) lie on y = 1e-5 x + 10
        assertEquals(1e-5, sweep.get("slope").asDouble(), 1e-15);
        assertEquals(1.0, sweep.get("r_squared").asDouble(), 1e-12);
        assertEquals(300, j.get("minimum_memory").get(0).get("minimum_mb").asDouble(), 1.0);
    }

    @Test
    void missingReferencesGiveNullRatios() {
        BenchReport r = new BenchReport("quick", "cmd", "env", null,
                List.of(new BenchReport.Run("tiny", "full", false, m("spiel4j", "full", 0.3, 90))), List.of(), List.of(),
                "peer could not run: no python3", List.of(), List.of());
        JsonNode full = r.json().get("results").get(0);
        assertTrue(full.get("step_time_vs_lora").isNull());
        assertTrue(full.get("step_time_vs_peer_lora").isNull());
        assertTrue(r.markdown().contains("Python peer: peer could not run: no python3"));
    }

    @Test
    void markdownTablesHoldEveryRow() {
        String md = report().markdown();
        assertTrue(md.contains("Command: `./spiel4j bench --suite quick`"), md);
        assertTrue(md.contains("| spiel4j | spiel-ag | fp32 | no | 1,000 | 0.2100 [0.1932-0.2436] | 2438 | 130.0 | 30.0 "
                + "| 0.008 | 1.2500 | 1.05x | 0.75x | 0.84x |"), md);
        assertTrue(md.contains("| python-peft | lora | fp32 | no |"), md);
        assertTrue(md.contains("| tiny | ia3 | no | exit 1: boom \\| bad |"), md);
        assertFalse(md.contains("### Targets"), "no target model, no targets table:\n" + md);
        assertTrue(md.contains("| overhead vs deltas (overhead MB vs deltas) | 3 | 1.000e-05 | 10.000 | 1.0000 |"), md);
        assertTrue(md.contains("| tiny | lora | 30 | 300 |"), md);
        long header = md.lines().filter(l -> l.startsWith("| tool |")).count();
        assertEquals(1, header);
    }

    @Test
    void writesJsonMarkdownAndPngs(@TempDir Path dir) throws Exception {
        report().writeAll(dir);
        JsonNode back = new ObjectMapper().readTree(dir.resolve("results.json").toFile());
        assertEquals(2, back.get("results").size());
        assertTrue(Files.readString(dir.resolve("report.md")).startsWith("## Benchmark suite `quick`"));
        for (String png : List.of("step_time_tiny.png", "overhead_tiny.png", "scaling_overhead-vs-deltas.png")) {
            assertNotNull(ImageIO.read(dir.resolve(png).toFile()), png);
        }
    }

    private static BenchReport.Run run(String tool, String model, String method, boolean checkpointing, double median,
                                       long overheadMib) {
        return new BenchReport.Run(model, method, checkpointing, m(tool, model, method, checkpointing, median, overheadMib));
    }

    /**
     * Model "big" in both settings (SpIEL-MA checkpointed missing) and model "solo" whose checkpointed SpIEL-AG has
     * only an uncheckpointed LoRA beside it.
     */
    private static BenchReport paired() {
        List<BenchReport.Run> runs = List.of(
                run("spiel4j", "big", "lora", false, 0.2, 40),
                run("spiel4j", "big", "spiel-ag", false, 0.208, 30),
                run("spiel4j", "big", "spiel-ma", false, 0.19, 32),
                run("spiel4j", "big", "lora", true, 0.3, 20),
                run("spiel4j", "big", "spiel-ag", true, 0.33, 22),
                run("spiel4j", "solo", "lora", false, 0.1, 10),
                run("spiel4j", "solo", "spiel-ag", true, 0.1, 10));
        List<BenchReport.Run> peer = List.of(
                run("python-peft", "big", "lora", false, 0.25, 80),
                run("python-peft", "big", "lora", true, 0.44, 50));
        return new BenchReport("quick", "cmd", "env", "big", runs, List.of(), peer, "ran", List.of(), List.of());
    }

    private static JsonNode row(JsonNode results, String model, String method, boolean checkpointing) {
        for (JsonNode r : results) {
            if (r.get("model").asText().equals(model) && r.get("method").asText().equals(method)
                    && r.get("activation_checkpointing").asBoolean() == checkpointing) {
                return r;
            }
        }
        throw new AssertionError("no row " + model + "/" + method + "/" + checkpointing + " in " + results);
    }

    @Test
    void ratiosCompareWithLoraInTheSameCheckpointingSetting() {
        BenchReport report = paired();
        JsonNode results = report.json().get("results");
        JsonNode agPlain = row(results, "big", "spiel-ag", false);
        assertEquals(30.0 / 40, agPlain.get("overhead_vs_lora").asDouble(), 1e-12);
        assertEquals(0.208 / 0.2, agPlain.get("step_time_vs_lora").asDouble(), 1e-12);
        assertEquals(0.208 / 0.25, agPlain.get("step_time_vs_peer_lora").asDouble(), 1e-12);
        JsonNode agCkpt = row(results, "big", "spiel-ag", true);
        assertEquals(22.0 / 20, agCkpt.get("overhead_vs_lora").asDouble(), 1e-12);
        assertEquals(0.33 / 0.3, agCkpt.get("step_time_vs_lora").asDouble(), 1e-12);
        assertEquals(0.33 / 0.44, agCkpt.get("step_time_vs_peer_lora").asDouble(), 1e-12);
        assertEquals(22.0 / 50, agCkpt.get("overhead_vs_peer_lora").asDouble(), 1e-12);
        assertEquals(1.0, row(results, "big", "lora", true).get("step_time_vs_lora").asDouble(), 1e-12);
        // no checkpointed LoRA on "solo": no ratio, not one against the uncheckpointed LoRA
        JsonNode solo = row(results, "solo", "spiel-ag", true);
        assertTrue(solo.get("step_time_vs_lora").isNull() && solo.get("overhead_vs_lora").isNull(), solo.toString());
        assertTrue(solo.get("step_time_vs_peer_lora").isNull(), solo.toString());
        JsonNode peerCkpt = row(report.json().get("peer_results"), "big", "lora", true);
        assertEquals("python-peft", peerCkpt.get("tool").asText());

        String md = report.markdown();
        assertTrue(md.contains("| spiel4j | spiel-ag | fp32 | yes | 1,000 | 0.3300 [0.3036-0.3828] | 1552 | 122.0 | 22.0 "
                + "| 0.008 | 1.2500 | 1.10x | 1.10x | 0.75x |"), md);
        assertTrue(md.contains("| spiel4j | spiel-ag | fp32 | no | 1,000 | 0.2080 "), md);
        assertTrue(md.contains("| python-peft | lora | fp32 | yes | 1,000 | 0.4400 [0.4048-0.5104] | 1164 | 150.0 | 50.0 "
                + "| 0.008 | 1.2500 | - | - | 1.00x |"), md);
        assertTrue(md.contains("| spiel4j | spiel-ag | fp32 | yes | 1,000 | 0.1000 [0.0920-0.1160] | 5120 | 110.0 | 10.0 "
                + "| 0.008 | 1.2500 | - | - | - |"), md);
    }

    @Test
    void targetsTableSaysWhichTargetsAreMetAndByHowMuchTheOthersAreMissed() {
        BenchReport report = paired();
        String md = report.markdown();
        assertTrue(md.contains("### Targets (big, fp32)"), md);
        for (String line : List.of(
                "| spiel-ag memory above the base vs spiel4j LoRA | no | <= 0.85x | 0.75x | met |",
                "| spiel-ma memory above the base vs spiel4j LoRA | no | <= 0.75x | 0.80x | missed by 0.05 (+7%) |",
                "| spiel-ag memory above the base vs spiel4j LoRA | yes | <= 1.00x | 1.10x | missed by 0.10 (+10%) |",
                "| spiel-ma memory above the base vs spiel4j LoRA | yes | <= 1.00x | - | not measured |",
                "| spiel-ag step time vs spiel4j LoRA | no | <= 1.05x | 1.04x | met |",
                "| spiel-ma step time vs spiel4j LoRA | no | <= 1.00x | 0.95x | met |",
                "| spiel-ag step time vs spiel4j LoRA | yes | <= 1.05x | 1.10x | missed by 0.05 (+5%) |",
                "| spiel-ma step time vs spiel4j LoRA | yes | <= 1.00x | - | not measured |",
                "| spiel-ag step time vs peer LoRA | no | <= 1.00x | 0.83x | met |",
                "| spiel-ma step time vs peer LoRA | no | <= 1.00x | 0.76x | met |",
                "| spiel-ag step time vs peer LoRA | yes | <= 1.00x | 0.75x | met |",
                "| spiel-ma step time vs peer LoRA | yes | <= 1.00x | - | not measured |")) {
            assertTrue(md.contains(line + "\n"), line + " not in\n" + md);
        }
        // the targets come before the per-model tables
        assertTrue(md.indexOf("### Targets") < md.indexOf("### big"), md);

        JsonNode targets = report.json().get("targets");
        assertEquals("big", targets.get("model").asText());
        assertEquals(BenchReport.TARGETS.size(), targets.get("rows").size());
        JsonNode maPlain = targets.get("rows").get(1);
        assertEquals("spiel-ma", maPlain.get("method").asText());
        assertEquals("overhead", maPlain.get("quantity").asText());
        assertFalse(maPlain.get("activation_checkpointing").asBoolean());
        assertEquals("lora", maPlain.get("reference").asText());
        assertEquals(0.75, maPlain.get("goal").asDouble());
        assertEquals(32.0 / 40, maPlain.get("measured").asDouble(), 1e-12);
        assertFalse(maPlain.get("met").asBoolean());
        JsonNode maCkpt = targets.get("rows").get(3);
        assertTrue(maCkpt.get("measured").isNull() && maCkpt.get("met").isNull(), maCkpt.toString());
        JsonNode agVsPeerCkpt = targets.get("rows").get(10);
        assertEquals("peer lora", agVsPeerCkpt.get("reference").asText());
        assertTrue(agVsPeerCkpt.get("activation_checkpointing").asBoolean());
        assertEquals(0.33 / 0.44, agVsPeerCkpt.get("measured").asDouble(), 1e-12);
        assertTrue(agVsPeerCkpt.get("met").asBoolean());
    }

    @Test
    void plotsDrawEachCheckpointingSettingApart(@TempDir Path dir) throws Exception {
        List<Path> files = paired().writePlots(dir);
        for (String png : List.of("step_time_big.png", "overhead_big.png", "step_time_big-ckpt.png",
                "overhead_big-ckpt.png", "step_time_solo.png", "step_time_solo-ckpt.png")) {
            assertTrue(files.contains(dir.resolve(png)), png + " not in " + files);
            assertNotNull(ImageIO.read(dir.resolve(png).toFile()), png);
        }
        assertEquals(8, files.size());
    }

    @Test
    void runMeasurementParsingNamesMissingFields() {
        ObjectNode n = new ObjectMapper().createObjectNode().put("status", "ok").put("tool", "x");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RunMeasurement.fromJson(n));
        assertTrue(e.getMessage().contains("\"model\""), e.getMessage());
        ObjectNode err = new ObjectMapper().createObjectNode().put("status", "error").put("error", "oom");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RunMeasurement.fromJson(err)).getMessage()
                .contains("oom"));
    }
}
