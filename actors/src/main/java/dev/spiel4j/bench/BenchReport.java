package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.report.Chart;
import dev.spiel4j.train.ProcMemory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * The benchmark suite's results as BENCHMARKS.md-ready markdown, the raw JSON (the shape of issue 4:
 * {@code {"suite", "results": [...], "peer": "ran" | reason}} plus detail keys) and PNG plots. Ratios compare
 * each spiel4j run with spiel4j's LoRA and with the Python peer's LoRA on the same model; a ratio whose
 * reference did not run is null in JSON and "-" in markdown. MB here means MiB (2^20 bytes).
 *
 * @param suite        suite name ("quick", "full")
 * @param command      the exact command that produced the results (printed above the tables)
 * @param environment  one line describing the machine and runtime
 * @param runs         spiel4j measurements
 * @param failures     configurations that did not produce a measurement, with why
 * @param peerRuns     the Python peer's measurements
 * @param peerStatus   "ran" when the peer ran, else its reason ("peer could not run: ...")
 * @param sweeps       scaling sweeps (memory overhead vs. deltas, vs. model size), each fitted with a line
 * @param minimumMemory minimum-memory bisections per method
 */
public record BenchReport(String suite, String command, String environment, List<Run> runs, List<Failure> failures,
                          List<Run> peerRuns, String peerStatus, List<Sweep> sweeps, List<MinimumMemory> minimumMemory) {

    private static final double MB = 1024.0 * 1024.0;
    private static final ObjectMapper JSON = new ObjectMapper();

    public BenchReport {
        runs = List.copyOf(runs);
        failures = List.copyOf(failures);
        peerRuns = List.copyOf(peerRuns);
        sweeps = List.copyOf(sweeps);
        minimumMemory = List.copyOf(minimumMemory);
    }

    /** One measured configuration (model and method label the row; the measurement carries the figures). */
    public record Run(String model, String method, RunMeasurement m) {
    }

    /** A configuration that produced no measurement. */
    public record Failure(String model, String method, String reason) {
    }

    /** A scaling sweep: y (memory overhead in MB) against x (deltas, or model parameters), with its line fit. */
    public record Sweep(String name, String xLabel, String yLabel, List<String> series, double[] x, double[] y) {
        public Sweep {
            if (x.length != y.length || x.length != series.size()) {
                throw new IllegalArgumentException("sweep '" + name + "': x, y and labels differ in length");
            }
            series = List.copyOf(series);
        }

        public Stats.LinearFit fit() {
            return Stats.fit(x, y);
        }
    }

    /**
     * The smallest memory cap at which a method's N steps completed. It can be below the uncapped peak RSS: under a
     * cap the kernel evicts clean file-backed pages (code, mapped libraries) that an uncapped process keeps.
     */
    public record MinimumMemory(String model, String method, int steps, MinimumMemorySearch.Result result,
                                ChildRunner.Enforcement enforcement) {
    }

    /** "ran" when any peer run succeeded, else the first reason (or a plain statement that none was asked). */
    public static String peerStatus(List<PeerOutcome> outcomes) {
        for (PeerOutcome o : outcomes) {
            if (o instanceof PeerOutcome.Ran) {
                return "ran";
            }
        }
        for (PeerOutcome o : outcomes) {
            if (o instanceof PeerOutcome.CouldNotRun c) {
                return c.reason();
            }
        }
        return PythonPeer.REASON_PREFIX + "no configuration asked for it";
    }

    /** A line describing this machine: cores, memory, OS, Java. */
    public static String describeMachine() {
        long memKb = ProcMemory.parse(Path.of("/proc/meminfo"), "MemTotal").orElse(0) / 1024;
        String arenas = System.getenv("MALLOC_ARENA_MAX"); // memory figures depend on it, see the launcher
        return String.format(Locale.ROOT, "%d cores, %.1f GiB RAM, %s %s, Java %s, MALLOC_ARENA_MAX=%s",
                Runtime.getRuntime().availableProcessors(), memKb / 1024.0 / 1024.0, System.getProperty("os.name"),
                System.getProperty("os.version"), System.getProperty("java.version"),
                arenas == null ? "unset (glibc default)" : arenas);
    }

    private Optional<Run> find(List<Run> in, String model, String method) {
        return in.stream().filter(r -> r.model().equals(model) && r.method().equals(method)).findFirst();
    }

    private OptionalDouble ratio(double value, Optional<Run> reference, ToDoubleFunction<RunMeasurement> f) {
        if (reference.isEmpty()) {
            return OptionalDouble.empty();
        }
        double ref = f.applyAsDouble(reference.get().m());
        return ref > 0 ? OptionalDouble.of(value / ref) : OptionalDouble.empty();
    }

    private static double median(RunMeasurement m) {
        return m.stepTimes().median();
    }

    private static double overhead(RunMeasurement m) {
        return m.overheadBytes();
    }

    private static double peak(RunMeasurement m) {
        return m.peakRssBytes();
    }

    /** The issue-4 JSON object, with detail keys beside the required ones. */
    public ObjectNode json() {
        ObjectNode root = JSON.createObjectNode();
        root.put("suite", suite);
        root.put("command", command);
        root.put("environment", environment);
        ArrayNode results = root.putArray("results");
        for (Run r : runs) {
            ObjectNode o = runJson(r);
            Optional<Run> lora = find(runs, r.model(), "lora");
            Optional<Run> peerLora = find(peerRuns, r.model(), "lora");
            putRatio(o, "step_time_vs_lora", ratio(median(r.m()), lora, BenchReport::median));
            putRatio(o, "overhead_vs_lora", ratio(overhead(r.m()), lora, BenchReport::overhead));
            putRatio(o, "step_time_vs_peer_lora", ratio(median(r.m()), peerLora, BenchReport::median));
            putRatio(o, "overhead_vs_peer_lora", ratio(overhead(r.m()), peerLora, BenchReport::overhead));
            putRatio(o, "peak_rss_vs_peer_lora", ratio(peak(r.m()), peerLora, BenchReport::peak));
            results.add(o);
        }
        root.put("peer", peerStatus);
        ArrayNode peer = root.putArray("peer_results");
        peerRuns.forEach(r -> peer.add(runJson(r)));
        ArrayNode failed = root.putArray("failures");
        failures.forEach(f -> failed.addObject().put("model", f.model()).put("method", f.method()).put("reason", f.reason()));
        ArrayNode sw = root.putArray("scaling");
        for (Sweep s : sweeps) {
            ObjectNode o = sw.addObject().put("name", s.name()).put("x_label", s.xLabel()).put("y_label", s.yLabel());
            ArrayNode pts = o.putArray("points");
            for (int i = 0; i < s.x().length; i++) {
                pts.addObject().put("label", s.series().get(i)).put("x", s.x()[i]).put("y", s.y()[i]);
            }
            if (s.x().length >= 2) {
                Stats.LinearFit f = s.fit();
                o.put("slope", f.slope()).put("intercept", f.intercept()).put("r_squared", f.rSquared());
            }
        }
        ArrayNode mins = root.putArray("minimum_memory");
        for (MinimumMemory mm : minimumMemory) {
            ObjectNode o = mins.addObject().put("model", mm.model()).put("method", mm.method()).put("steps", mm.steps())
                    .put("enforcement", mm.enforcement().name()).put("converged", mm.result().converged())
                    .put("probes", mm.result().probes().size());
            if (mm.result().minimumBytes().isPresent()) {
                o.put("minimum_mb", mm.result().minimumBytes().getAsLong() / MB);
            } else {
                o.putNull("minimum_mb");
            }
        }
        return root;
    }

    private static ObjectNode runJson(Run r) {
        RunMeasurement m = r.m();
        Stats.Summary t = m.stepTimes();
        ObjectNode o = JSON.createObjectNode();
        o.put("model", r.model());
        o.put("method", r.method());
        o.put("tool", m.tool());
        o.put("dtype", m.dtype());
        o.put("trainable_params", m.trainableParams());
        o.put("step_time_median_s", t.median());
        o.put("step_time_p10_s", t.p10());
        o.put("step_time_p90_s", t.p90());
        o.put("measured_steps", t.n());
        o.put("tokens_per_s", m.tokensPerSecond());
        o.put("peak_rss_mb", m.peakRssBytes() / MB);
        o.put("overhead_mb", m.overheadBytes() / MB);
        o.put("base_weight_mb", m.baseWeightBytes() / MB);
        o.put("optimizer_state_bytes", m.optimizerStateBytes());
        if (m.evalLoss().isPresent()) {
            o.put("eval_loss", m.evalLoss().getAsDouble());
        } else {
            o.putNull("eval_loss");
        }
        if (m.evalLossInitial().isPresent()) {
            o.put("eval_loss_initial", m.evalLossInitial().getAsDouble());
        }
        return o;
    }

    private static void putRatio(ObjectNode o, String key, OptionalDouble v) {
        if (v.isPresent()) {
            o.put(key, v.getAsDouble());
        } else {
            o.putNull(key);
        }
    }

    /** BENCHMARKS.md-ready markdown: command, machine, one table per model, scaling fits, minimum memory. */
    public String markdown() {
        StringBuilder md = new StringBuilder();
        md.append("## Benchmark suite `").append(suite).append("`\n\n");
        md.append("Command: `").append(command).append("`  \n");
        md.append("Machine: ").append(environment).append("  \n");
        md.append("Python peer: ").append(peerStatus).append("\n\n");
        md.append("Step time: median over the measured steps (warm-up excluded), p10-p90 in brackets. Overhead: peak "
                + "RSS while training minus RSS with the base model loaded. Ratios: step time and overhead relative to "
                + "spiel4j LoRA, and step time relative to the Python peer's PEFT LoRA, on the same model. MB = 2^20 bytes.\n\n");
        Set<String> models = new LinkedHashSet<>();
        runs.forEach(r -> models.add(r.model()));
        peerRuns.forEach(r -> models.add(r.model()));
        for (String model : models) {
            md.append("### ").append(model).append("\n\n");
            md.append("| tool | method | trainable params | step time s | tokens/s | peak RSS MB | overhead MB "
                    + "| optimizer state MB | eval loss | time vs LoRA | overhead vs LoRA | time vs peer LoRA |\n");
            md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            Optional<Run> lora = find(runs, model, "lora");
            Optional<Run> peerLora = find(peerRuns, model, "lora");
            for (Run r : runs) {
                if (r.model().equals(model)) {
                    row(md, r, ratio(median(r.m()), lora, BenchReport::median),
                            ratio(overhead(r.m()), lora, BenchReport::overhead),
                            ratio(median(r.m()), peerLora, BenchReport::median));
                }
            }
            for (Run r : peerRuns) {
                if (r.model().equals(model)) {
                    row(md, r, OptionalDouble.empty(), OptionalDouble.empty(),
                            ratio(median(r.m()), peerLora, BenchReport::median));
                }
            }
            md.append('\n');
        }
        if (!failures.isEmpty()) {
            md.append("### Configurations that did not complete\n\n| model | method | reason |\n|---|---|---|\n");
            failures.forEach(f -> md.append("| ").append(f.model()).append(" | ").append(f.method()).append(" | ")
                    .append(f.reason().replace("|", "\\|").replace("\n", " ")).append(" |\n"));
            md.append('\n');
        }
        if (!sweeps.isEmpty()) {
            md.append("### Scaling\n\n| sweep | points | slope | intercept | R^2 |\n|---|---:|---:|---:|---:|\n");
            for (Sweep s : sweeps) {
                md.append("| ").append(s.name()).append(" (").append(s.yLabel()).append(" vs ").append(s.xLabel())
                        .append(") | ").append(s.x().length);
                if (s.x().length >= 2) {
                    Stats.LinearFit f = s.fit();
                    md.append(" | ").append(sci(f.slope())).append(" | ").append(fmt(f.intercept(), 3))
                            .append(" | ").append(fmt(f.rSquared(), 4)).append(" |\n");
                } else {
                    md.append(" | - | - | - |\n");
                }
            }
            md.append('\n');
        }
        if (!minimumMemory.isEmpty()) {
            md.append("### Minimum memory (smallest cap at which the steps complete)\n\n"
                    + "| model | method | steps | minimum MB | bracket MB | probes | enforced by |\n"
                    + "|---|---|---:|---:|---|---:|---|\n");
            for (MinimumMemory mm : minimumMemory) {
                MinimumMemorySearch.Result res = mm.result();
                String min = res.minimumBytes().isPresent() ? fmt(res.minimumBytes().getAsLong() / MB, 0)
                        : "did not run at the upper cap";
                String bracket = (res.maximumFailingBytes().isPresent() ? fmt(res.maximumFailingBytes().getAsLong() / MB, 0) : "?")
                        + " - " + (res.minimumBytes().isPresent() ? min : "?") + (res.converged() ? "" : " (not converged)");
                md.append("| ").append(mm.model()).append(" | ").append(mm.method()).append(" | ").append(mm.steps())
                        .append(" | ").append(min).append(" | ").append(bracket).append(" | ")
                        .append(res.probes().size()).append(" | ").append(mm.enforcement()).append(" |\n");
            }
            md.append('\n');
        }
        return md.toString();
    }

    private static void row(StringBuilder md, Run r, OptionalDouble vsLora, OptionalDouble ovVsLora, OptionalDouble vsPeer) {
        RunMeasurement m = r.m();
        Stats.Summary t = m.stepTimes();
        md.append("| ").append(m.tool()).append(" | ").append(r.method()).append(" | ")
                .append(String.format(Locale.ROOT, "%,d", m.trainableParams())).append(" | ")
                .append(fmt(t.median(), 4)).append(" [").append(fmt(t.p10(), 4)).append("-").append(fmt(t.p90(), 4))
                .append("] | ").append(fmt(m.tokensPerSecond(), 0)).append(" | ")
                .append(fmt(m.peakRssBytes() / MB, 1)).append(" | ").append(fmt(m.overheadBytes() / MB, 1)).append(" | ")
                .append(fmt(m.optimizerStateBytes() / MB, 3)).append(" | ")
                .append(m.evalLoss().isPresent() ? fmt(m.evalLoss().getAsDouble(), 4) : "-").append(" | ")
                .append(ratioText(vsLora)).append(" | ").append(ratioText(ovVsLora)).append(" | ")
                .append(ratioText(vsPeer)).append(" |\n");
    }

    private static String ratioText(OptionalDouble v) {
        return v.isPresent() ? fmt(v.getAsDouble(), 2) + "x" : "-";
    }

    private static String fmt(double v, int decimals) {
        return String.format(Locale.ROOT, "%." + decimals + "f", v);
    }

    private static String sci(double v) {
        return String.format(Locale.ROOT, "%.4g", v);
    }

    /**
     * Writes the plots: step time and memory overhead per method (one bar chart per model, peer runs included)
     * and each scaling sweep with its fitted line. Returns the files written.
     */
    public List<Path> writePlots(Path dir) {
        List<Path> files = new ArrayList<>();
        Set<String> models = new LinkedHashSet<>();
        runs.forEach(r -> models.add(r.model()));
        for (String model : models) {
            List<String> labels = new ArrayList<>();
            List<Double> times = new ArrayList<>(), overheads = new ArrayList<>();
            for (List<Run> list : List.of(runs, peerRuns)) {
                for (Run r : list) {
                    if (r.model().equals(model)) {
                        labels.add(list == runs ? r.method() : "peft-" + r.method());
                        times.add(median(r.m()));
                        overheads.add(overhead(r.m()) / MB);
                    }
                }
            }
            String slug = slug(model);
            files.add(bar("Step time per method: " + model, "median step time (s)", labels, times,
                    dir.resolve("step_time_" + slug + ".png")));
            files.add(bar("Memory above the base model: " + model, "overhead (MB)", labels, overheads,
                    dir.resolve("overhead_" + slug + ".png")));
        }
        for (Sweep s : sweeps) {
            List<Chart.Series> series = new ArrayList<>();
            series.add(new Chart.Series("measured", s.x(), s.y()));
            if (s.x().length >= 2) {
                Stats.LinearFit f = s.fit();
                double[] fitted = new double[s.x().length];
                for (int i = 0; i < fitted.length; i++) {
                    fitted[i] = f.predict(s.x()[i]);
                }
                series.add(new Chart.Series(String.format(Locale.ROOT, "fit, R^2 %.3f", f.rSquared()), s.x(), fitted));
            }
            Path file = dir.resolve("scaling_" + slug(s.name()) + ".png");
            Chart.lines(s.name(), s.xLabel(), s.yLabel(), series).writePng(file);
            files.add(file);
        }
        return files;
    }

    private static Path bar(String title, String yLabel, List<String> labels, List<Double> values, Path file) {
        Chart.bars(title, "method", yLabel, labels, values.stream().mapToDouble(Double::doubleValue).toArray())
                .writePng(file);
        return file;
    }

    private static String slug(String s) {
        return s.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("(^-|-$)", "");
    }

    /** Writes {@code report.md}, {@code results.json} and the plots into {@code dir}. */
    public void writeAll(Path dir) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("report.md"), markdown());
            JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("results.json").toFile(), json());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the benchmark report into " + dir, e);
        }
        writePlots(dir);
    }
}
