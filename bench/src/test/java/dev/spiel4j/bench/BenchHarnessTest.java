package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchHarnessTest {
    private static final long MIB = 1024 * 1024;

    private static BenchSpec synthetic(Path batches, String method, long methodMib) {
        BenchSpec s = BenchChildTest.spec(batches, "synthetic", 32, methodMib * MIB, 3);
        return new BenchSpec(s.workload(), s.model(), method, s.budget(), s.dtype(), s.threads(), s.steps(),
                s.warmupSteps(), s.lr(), s.weightDecay(), s.seed(), s.batches(), false);
    }

    @Test
    void childEnvironmentReachesTheChild() {
        List<String> command = BenchHarness.withEnvironment(Map.of("SPIEL4J_PROBE", "42"),
                List.of("sh", "-c", "echo '{\"probe\":\"'\"$SPIEL4J_PROBE\"'\"}'"));
        ChildRunner.Outcome o = ChildRunner.run(command, Duration.ofSeconds(30));
        assertEquals("42", o.result().orElseThrow().get("probe").asText(), o.stderrTail());
        assertEquals(List.of("true"), BenchHarness.withEnvironment(Map.of(), List.of("true")));
    }

    @Test
    void timedRunsPoolTheirStepTimesAndMustTrainToTheSameLosses() {
        RunMeasurement first = BenchReportTest.m("spiel4j", "spiel-ag", 0.2, 10);
        RunMeasurement second = BenchReportTest.m("spiel4j", "spiel-ag", 0.4, 10);
        BenchHarness.Measured pooled = BenchHarness.pool(BenchHarness.pool(null,
                new BenchHarness.Measured(first, null), 1), new BenchHarness.Measured(second, null), 2);
        assertEquals(null, pooled.failureReason());
        assertEquals(List.of(0.24, 0.2, 0.18, 0.48, 0.4, 0.36), Arrays.stream(pooled.measurement().stepTimesSeconds())
                .boxed().map(t -> Math.round(t * 100) / 100.0).toList());
        assertEquals(0.3, pooled.measurement().stepTimes().median(), 1e-12);

        RunMeasurement otherLosses = new RunMeasurement("spiel4j", "tiny", "spiel-ag", false, "fp32", 2, 1000, 0,
                8000, 512, 2, second.stepTimesSeconds(), new double[]{2, 1.5, 1.3}, second.evalLossInitial(),
                second.evalLoss(), second.rssAfterLoadBytes(), second.peakRssLoadBytes(), second.peakRssTrainBytes(),
                second.peakRssBytes());
        String differs = BenchHarness.pool(pooled, new BenchHarness.Measured(otherLosses, null), 3).failureReason();
        assertTrue(differs.startsWith("timed run 3 trained to other losses") && differs.endsWith("not reproducible"),
                differs);
        assertEquals("timed run 2: exit 1", BenchHarness.pool(pooled, new BenchHarness.Measured(null, "exit 1"), 2)
                .failureReason());
        assertEquals("exit 1", BenchHarness.pool(null, new BenchHarness.Measured(null, "exit 1"), 1).failureReason());
    }

    /**
     * A miniature suite on the synthetic workload, each run in its own JVM: the overhead sweep over the method's
     * allocation must come out with slope 2 MB per MB (memory figures come from the memory runs, which touch twice
     * the method's bytes), and the bisected minimum must lie between the anonymous memory the workload touches (32 MiB base + 20 MiB method, which no cap can reclaim without swap) and the
     * measured peak plus the tolerance. It may lie below the uncapped RSS: under a cap the kernel evicts clean
     * file-backed pages (JVM code, mapped jars) that an uncapped process keeps resident.
     */
    @Test
    void runsAPlanEndToEnd(@TempDir Path dir) {
        Path batches = dir.resolve("batches.json");
        BatchFile.synthetic(1, 2, 1, 1, 8, 16).write(batches);
        BenchSpec lora = synthetic(batches, "lora", 40);
        BenchSpec ag = synthetic(batches, "spiel-ag", 20);
        BenchSpec broken = new BenchSpec("missing-engine", ag.model(), "ia3", ag.budget(), "fp32", 1, 3, 2, 1e-3, 0, 1,
                batches.toString(), false);
        double[] x = {16, 48, 80};
        List<BenchSpec> sweepSpecs = new ArrayList<>();
        for (double mib : x) {
            sweepSpecs.add(synthetic(batches, "spiel-ag", (long) mib));
        }
        BenchSpec baseline = synthetic(batches, "lora", 16);
        BenchPlan plan = new BenchPlan("test", "test command", null, List.of(lora, ag, broken),
                List.of(new BenchPlan.Sweep("overhead vs method MiB", "method MiB", List.of("a", "b", "c"), sweepSpecs, x),
                        new BenchPlan.Sweep("overhead above a 16 MiB method", "method MiB", List.of("a", "b", "c"),
                                sweepSpecs, x, List.of(baseline, baseline, baseline))),
                List.of(ag));
        List<String> log = new ArrayList<>();
        // the memory run's workload touches twice the method's bytes: memory figures must come from it
        BenchHarness harness = new BenchHarness(new BenchHarness.Options(dir, Duration.ofSeconds(60), "384m", null,
                8 * MIB, 12, false, Map.of(), Map.of(SyntheticWorkload.METHOD_SCALE, "2"), 2), log::add);
        BenchReport report = harness.run(plan);

        assertEquals(2, report.runs().size(), String.join("\n", log));
        assertEquals(1, report.failures().size());
        assertTrue(report.failures().get(0).reason().contains("missing-engine"), report.failures().get(0).reason());
        assertTrue(report.peerStatus().startsWith("peer could not run: "));

        BenchReport.Sweep sweep = report.sweeps().get(0);
        assertEquals(3, sweep.x().length);
        Stats.LinearFit fit = sweep.fit();
        assertEquals(2.0, fit.slope(), 0.3, "overhead MB per method MB, from the memory runs");
        assertTrue(fit.rSquared() > 0.98, "R^2 " + fit.rSquared());
        BenchReport.Sweep above = report.sweeps().get(1);
        assertEquals("overhead above baseline MB", above.yLabel());
        for (int i = 0; i < 3; i++) {
            // same children (run once), less the baseline's own overhead of about 2 x 16 MiB
            assertEquals(32, sweep.y()[i] - above.y()[i], 8, "point " + i);
        }

        // two timed runs of each configuration, in two rounds (the broken one not again); the step times of both
        // together. The sweeps' runs follow.
        List<String> timedRuns = log.stream().filter(l -> l.startsWith("run: ") && l.contains("timed run")).limit(5)
                .toList();
        assertEquals(List.of("1 of 2", "1 of 2", "1 of 2", "2 of 2", "2 of 2"), timedRuns.stream()
                .map(l -> l.substring(l.indexOf("timed run ") + "timed run ".length(), l.length() - 1)).toList(),
                String.join("\n", log));
        assertEquals(2 * lora.steps(), report.runs().get(0).m().stepTimesSeconds().length);
        assertTrue(report.environment().contains("step times from 2 timed runs of each configuration"),
                report.environment());

        JsonNode agRow = report.json().get("results").get(1);
        assertEquals(20.0 / 40.0, agRow.get("overhead_vs_lora").asDouble(), 0.2);

        BenchReport.MinimumMemory min = report.minimumMemory().get(0);
        RunMeasurement measured = report.runs().get(1).m();
        long found = min.result().minimumBytes().orElseThrow();
        assertTrue(min.result().converged(), min.toString());
        assertTrue(found > 52 * MIB && found <= measured.peakRssBytes() + 8 * MIB,
                "minimum " + (found >> 20) + " MiB; after load " + (measured.rssAfterLoadBytes() >> 20)
                        + " MiB, peak " + (measured.peakRssBytes() >> 20) + " MiB");
        assertTrue(report.markdown().contains("| synthetic-32 | spiel-ag | 3 |"), report.markdown());
    }
}
