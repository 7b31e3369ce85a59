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
import java.util.OptionalDouble;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchReportTest {
    private static final long MIB = 1024 * 1024;

    /** A measurement with median step time {@code median} s and {@code overheadMib} MiB above a 100 MiB load. */
    static RunMeasurement m(String tool, String method, double median, long overheadMib) {
        return new RunMeasurement(tool, "tiny", method, "fp32", 2, 1000, 4 * MIB, 8000, 512, 2,
                new double[]{median * 1.2, median, median * 0.9}, new double[]{2, 1.5, 1.2}, OptionalDouble.of(3.0),
                OptionalDouble.of(1.25), 100 * MIB, 110 * MIB, OptionalLong.of((100 + overheadMib) * MIB),
                Math.max(110, 100 + overheadMib) * MIB);
    }

    private static BenchReport report() {
        List<BenchReport.Run> runs = List.of(
                new BenchReport.Run("tiny", "lora", m("spiel4j", "lora", 0.2, 40)),
                new BenchReport.Run("tiny", "spiel-ag", m("spiel4j", "spiel-ag", 0.21, 30)));
        List<BenchReport.Run> peer = List.of(new BenchReport.Run("tiny", "lora", m("python-peft", "lora", 0.25, 80)));
        BenchReport.Sweep sweep = new BenchReport.Sweep("overhead vs deltas", "deltas", "overhead MB",
                List.of("d1", "d2", "d3"), new double[]{1e5, 2e5, 4e5}, new double[]{11, 12, 14});
        MinimumMemorySearch.Result min = new MinimumMemorySearch(MIB, 20).search(0, 512 * MIB, c -> c >= 300 * MIB);
        return new BenchReport("quick", "./spiel4j bench --suite quick", "test machine", runs,
                List.of(new BenchReport.Failure("tiny", "ia3", "exit 1: boom | bad")), peer, "ran", List.of(sweep),
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
        assertEquals("spiel-ag", ag.get("method").asText());
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
        BenchReport r = new BenchReport("quick", "cmd", "env",
                List.of(new BenchReport.Run("tiny", "full", m("spiel4j", "full", 0.3, 90))), List.of(), List.of(),
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
        assertTrue(md.contains("| spiel4j | spiel-ag | 1,000 | 0.2100 [0.1932-0.2436] | 2438 | 130.0 | 30.0 | 0.008 | 1.2500 "
                + "| 1.05x | 0.75x | 0.84x |"), md);
        assertTrue(md.contains("| python-peft | lora |"), md);
        assertTrue(md.contains("| tiny | ia3 | exit 1: boom \\| bad |"), md);
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
