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
 * {@code {"suite", "results": [...], "peer": "ran" | reason}} plus detail keys) and PNG plots. A row is one
 * configuration: (model, method, dtype, activation checkpointing). Ratios compare a run with spiel4j's LoRA and with
 * the Python peer's LoRA of the same model, dtype and activation-checkpointing setting (a checkpointed SpIEL run
 * against checkpointed LoRA); a ratio whose reference did not run is null in JSON and "-" in markdown. The targets
 * of issue 8 are read from the rows of {@code targetModel}. MB here means MiB (2^20 bytes).
 *
 * @param suite        suite name ("quick", "full")
 * @param command      the exact command that produced the results (printed above the tables)
 * @param environment  one line describing the machine and runtime
 * @param targetModel  the model whose rows the targets table reads; null for no targets table
 * @param runs         spiel4j measurements
 * @param failures     configurations that did not produce a measurement, with why
 * @param peerRuns     the Python peer's measurements
 * @param peerStatus   "ran" when the peer ran, else its reason ("peer could not run: ...")
 * @param sweeps       scaling sweeps (memory overhead vs. deltas, vs. model size), each fitted with a line
 * @param minimumMemory minimum-memory bisections per method
 */
public record BenchReport(String suite, String command, String environment, String targetModel, List<Run> runs,
                          List<Failure> failures, List<Run> peerRuns, String peerStatus, List<Sweep> sweeps,
                          List<MinimumMemory> minimumMemory) {

    private static final double MB = 1024.0 * 1024.0;
    private static final ObjectMapper JSON = new ObjectMapper();

    public BenchReport {
        runs = List.copyOf(runs);
        failures = List.copyOf(failures);
        peerRuns = List.copyOf(peerRuns);
        sweeps = List.copyOf(sweeps);
        minimumMemory = List.copyOf(minimumMemory);
    }

    /**
     * One measured configuration (model, method and activation checkpointing label the row, with the measurement's
     * dtype; the measurement carries the figures).
     */
    public record Run(String model, String method, boolean activationCheckpointing, RunMeasurement m) {
        /** Label in plots (which draw each activation-checkpointing setting apart): the method, dtype unless fp32. */
        String label() {
            return method + (m.dtype().equals("fp32") ? "" : " " + m.dtype());
        }
    }

    /** A configuration that produced no measurement. */
    public record Failure(String model, String method, boolean activationCheckpointing, String reason) {
    }

    /** What a target compares: the median step time or the memory above the base model. */
    public enum Quantity {
        STEP_TIME("step time"), OVERHEAD("memory above the base");

        final String text;

        Quantity(String text) {
            this.text = text;
        }

        double of(RunMeasurement m) {
            return this == STEP_TIME ? median(m) : overhead(m);
        }
    }

    /**
     * A goal of issue 8: {@code quantity} of {@code method} over that of the reference LoRA (spiel4j's, or the
     * Python peer's when {@code vsPeer}) in the same activation-checkpointing setting, at most {@code goal}.
     */
    public record Target(String method, Quantity quantity, boolean activationCheckpointing, boolean vsPeer,
                         double goal) {
        String text() {
            return method + " " + quantity.text + " vs " + (vsPeer ? "peer LoRA" : "spiel4j LoRA");
        }
    }

    /** A target with its measured ratio (empty when the run or its reference is missing). */
    public record TargetResult(Target target, OptionalDouble measured) {
        /** Empty when not measured. */
        Optional<Boolean> met() {
            return measured.isPresent() ? Optional.of(measured.getAsDouble() <= target.goal()) : Optional.empty();
        }

        String verdict() {
            if (measured.isEmpty()) {
                return "not measured";
            }
            double m = measured.getAsDouble(), g = target.goal();
            return m <= g ? "met" : String.format(Locale.ROOT, "missed by %.2f (+%.0f%%)", m - g, 100 * (m / g - 1));
        }
    }

    /**
     * Issue 8's targets: memory above the base SpIEL-AG <= 0.85x and SpIEL-MA <= 0.75x spiel4j LoRA's without
     * activation checkpointing, both <= 1.0x with it; step time SpIEL-AG <= 1.05x and SpIEL-MA <= 1.0x spiel4j LoRA
     * and both <= 1.0x the peer's LoRA, in each setting.
     */
    public static final List<Target> TARGETS = List.of(
            new Target("spiel-ag", Quantity.OVERHEAD, false, false, 0.85),
            new Target("spiel-ma", Quantity.OVERHEAD, false, false, 0.75),
            new Target("spiel-ag", Quantity.OVERHEAD, true, false, 1.0),
            new Target("spiel-ma", Quantity.OVERHEAD, true, false, 1.0),
            new Target("spiel-ag", Quantity.STEP_TIME, false, false, 1.05),
            new Target("spiel-ma", Quantity.STEP_TIME, false, false, 1.0),
            new Target("spiel-ag", Quantity.STEP_TIME, true, false, 1.05),
            new Target("spiel-ma", Quantity.STEP_TIME, true, false, 1.0),
            new Target("spiel-ag", Quantity.STEP_TIME, false, true, 1.0),
            new Target("spiel-ma", Quantity.STEP_TIME, false, true, 1.0),
            new Target("spiel-ag", Quantity.STEP_TIME, true, true, 1.0),
            new Target("spiel-ma", Quantity.STEP_TIME, true, true, 1.0));

    /** A scaling sweep: y (memory overhead in MB) against x (deltas, or model parameters), with its line fit. */
    public record Sweep(String name, String xLabel, String yLabel, List<String> series, double[] x, double[] y) {
        public Sweep {
            if (x.length != y.length || x.length != series.size()) {
                throw new IllegalArgumentException("sweep '" + name + "': x, y and labels differ in length");
            }
            series = List.copyOf(series);
        }

        Stats.LinearFit fit() {
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
    static String peerStatus(List<PeerOutcome> outcomes) {
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
    static String describeMachine() {
        long memKb = ProcMemory.parse(Path.of("/proc/meminfo"), "MemTotal").orElse(0) / 1024;
        String arenas = System.getenv("MALLOC_ARENA_MAX"); // memory figures depend on it, see the launcher
        return String.format(Locale.ROOT, "%d cores, %.1f GiB RAM, %s %s, Java %s, MALLOC_ARENA_MAX=%s",
                Runtime.getRuntime().availableProcessors(), memKb / 1024.0 / 1024.0, System.getProperty("os.name"),
                System.getProperty("os.version"), System.getProperty("java.version"),
                arenas == null ? "unset (glibc default)" : arenas);
    }

    private static Optional<Run> find(List<Run> in, String model, String method, String dtype, boolean checkpointing) {
        return in.stream().filter(r -> r.model().equals(model) && r.method().equals(method)
                && r.m().dtype().equals(dtype) && r.activationCheckpointing() == checkpointing).findFirst();
    }

    /**
     * {@code f} of run {@code r} over {@code f} of the LoRA run in {@code references} (spiel4j's runs or the peer's)
     * with r's model, dtype and activation-checkpointing setting; empty when there is none or its figure is 0.
     */
    private static OptionalDouble ratio(Run r, List<Run> references, ToDoubleFunction<RunMeasurement> f) {
        Optional<Run> reference = find(references, r.model(), "lora", r.m().dtype(), r.activationCheckpointing());
        if (reference.isEmpty()) {
            return OptionalDouble.empty();
        }
        double ref = f.applyAsDouble(reference.get().m());
        return ref > 0 ? OptionalDouble.of(f.applyAsDouble(r.m()) / ref) : OptionalDouble.empty();
    }

    /**
     * {@link #TARGETS} measured on {@link #targetModel}'s fp32 rows (the suites train the targets' shape in fp32);
     * empty without a target model.
     */
    public List<TargetResult> targets() {
        if (targetModel == null) {
            return List.of();
        }
        List<TargetResult> out = new ArrayList<>();
        for (Target t : TARGETS) {
            Optional<Run> run = find(runs, targetModel, t.method(), "fp32", t.activationCheckpointing());
            out.add(new TargetResult(t, run.isEmpty() ? OptionalDouble.empty()
                    : ratio(run.get(), t.vsPeer() ? peerRuns : runs, t.quantity()::of)));
        }
        return out;
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
            putRatio(o, "step_time_vs_lora", ratio(r, runs, BenchReport::median));
            putRatio(o, "overhead_vs_lora", ratio(r, runs, BenchReport::overhead));
            putRatio(o, "step_time_vs_peer_lora", ratio(r, peerRuns, BenchReport::median));
            putRatio(o, "overhead_vs_peer_lora", ratio(r, peerRuns, BenchReport::overhead));
            putRatio(o, "peak_rss_vs_peer_lora", ratio(r, peerRuns, BenchReport::peak));
            results.add(o);
        }
        if (targetModel != null) {
            ObjectNode targets = root.putObject("targets").put("model", targetModel);
            ArrayNode rows = targets.putArray("rows");
            for (TargetResult t : targets()) {
                ObjectNode o = rows.addObject().put("method", t.target().method())
                        .put("quantity", t.target().quantity().name().toLowerCase(Locale.ROOT))
                        .put("activation_checkpointing", t.target().activationCheckpointing())
                        .put("reference", t.target().vsPeer() ? "peer lora" : "lora").put("goal", t.target().goal());
                putRatio(o, "measured", t.measured());
                if (t.met().isPresent()) {
                    o.put("met", t.met().get());
                } else {
                    o.putNull("met");
                }
            }
        }
        root.put("peer", peerStatus);
        ArrayNode peer = root.putArray("peer_results");
        peerRuns.forEach(r -> peer.add(runJson(r)));
        ArrayNode failed = root.putArray("failures");
        failures.forEach(f -> failed.addObject().put("model", f.model()).put("method", f.method())
                .put("activation_checkpointing", f.activationCheckpointing()).put("reason", f.reason()));
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
        o.put("activation_checkpointing", r.activationCheckpointing());
        o.put("tool", m.tool());
        o.put("dtype", m.dtype());
        o.put("trainable_params", m.trainableParams());
        o.put("step_time_median_s", t.median());
        o.put("step_time_p10_s", t.p10());
        o.put("step_time_p90_s", t.p90());
        o.put("measured_steps", t.n());
        // every measured step, the timed runs one after the other: the spread within and between runs stays visible
        ArrayNode steps = o.putArray("step_times_s");
        for (double seconds : m.stepTimesSeconds()) {
            steps.add(seconds);
        }
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
                + "RSS while training minus RSS with the base model loaded. act. ckpt: activation checkpointing (the "
                + "forward pass keeps each block's input only and recomputes the block in its backward pass). Ratios: "
                + "step time and overhead relative to spiel4j LoRA, and step time relative to the Python peer's PEFT "
                + "LoRA, of the same model, dtype and activation-checkpointing setting. MB = 2^20 bytes.\n\n");
        if (targetModel != null) {
            md.append("### Targets (").append(targetModel).append(", fp32)\n\n")
                    .append("Each ratio against the LoRA run in the same activation-checkpointing setting.\n\n")
                    .append("| target | act. ckpt | goal | measured | verdict |\n|---|---|---:|---:|---|\n");
            for (TargetResult t : targets()) {
                md.append("| ").append(t.target().text()).append(" | ")
                        .append(yesNo(t.target().activationCheckpointing())).append(" | <= ")
                        .append(fmt(t.target().goal(), 2)).append("x | ").append(ratioText(t.measured())).append(" | ")
                        .append(t.verdict()).append(" |\n");
            }
            md.append('\n');
        }
        Set<String> models = new LinkedHashSet<>();
        runs.forEach(r -> models.add(r.model()));
        peerRuns.forEach(r -> models.add(r.model()));
        for (String model : models) {
            md.append("### ").append(model).append("\n\n");
            md.append("| tool | method | dtype | act. ckpt | trainable params | step time s | tokens/s | peak RSS MB "
                    + "| overhead MB | optimizer state MB | eval loss | time vs LoRA | overhead vs LoRA "
                    + "| time vs peer LoRA |\n");
            md.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            for (Run r : runs) {
                if (r.model().equals(model)) {
                    row(md, r, ratio(r, runs, BenchReport::median), ratio(r, runs, BenchReport::overhead),
                            ratio(r, peerRuns, BenchReport::median));
                }
            }
            for (Run r : peerRuns) {
                if (r.model().equals(model)) {
                    row(md, r, OptionalDouble.empty(), OptionalDouble.empty(), ratio(r, peerRuns, BenchReport::median));
                }
            }
            md.append('\n');
        }
        if (!failures.isEmpty()) {
            md.append("### Configurations that did not complete\n\n| model | method | act. ckpt | reason |\n"
                    + "|---|---|---|---|\n");
            failures.forEach(f -> md.append("| ").append(f.model()).append(" | ").append(f.method()).append(" | ")
                    .append(yesNo(f.activationCheckpointing())).append(" | ")
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
        md.append("| ").append(m.tool()).append(" | ").append(r.method()).append(" | ").append(m.dtype()).append(" | ")
                .append(yesNo(r.activationCheckpointing())).append(" | ")
                .append(String.format(Locale.ROOT, "%,d", m.trainableParams())).append(" | ")
                .append(fmt(t.median(), 4)).append(" [").append(fmt(t.p10(), 4)).append("-").append(fmt(t.p90(), 4))
                .append("] | ").append(fmt(m.tokensPerSecond(), 0)).append(" | ")
                .append(fmt(m.peakRssBytes() / MB, 1)).append(" | ").append(fmt(m.overheadBytes() / MB, 1)).append(" | ")
                .append(fmt(m.optimizerStateBytes() / MB, 3)).append(" | ")
                .append(m.evalLoss().isPresent() ? fmt(m.evalLoss().getAsDouble(), 4) : "-").append(" | ")
                .append(ratioText(vsLora)).append(" | ").append(ratioText(ovVsLora)).append(" | ")
                .append(ratioText(vsPeer)).append(" |\n");
    }

    private static String yesNo(boolean v) {
        return v ? "yes" : "no";
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
     * Writes the plots: step time and memory overhead per method (bar charts per model and activation-checkpointing
     * setting, peer runs included: {@code step_time_<model>.png} without checkpointing, {@code
     * step_time_<model>-ckpt.png} with it) and each scaling sweep with its fitted line. Returns the files written.
     */
    List<Path> writePlots(Path dir) {
        List<Path> files = new ArrayList<>();
        Set<String> models = new LinkedHashSet<>();
        runs.forEach(r -> models.add(r.model()));
        for (String model : models) {
            for (boolean checkpointing : List.of(false, true)) {
                List<String> labels = new ArrayList<>();
                List<Double> times = new ArrayList<>(), overheads = new ArrayList<>();
                for (List<Run> list : List.of(runs, peerRuns)) {
                    for (Run r : list) {
                        if (r.model().equals(model) && r.activationCheckpointing() == checkpointing) {
                            labels.add(list == runs ? r.label() : "peft-" + r.label());
                            times.add(median(r.m()));
                            overheads.add(overhead(r.m()) / MB);
                        }
                    }
                }
                if (labels.isEmpty()) {
                    continue;
                }
                String slug = slug(model) + (checkpointing ? "-ckpt" : "");
                String title = model + (checkpointing ? ", activation checkpointing" : "");
                files.add(bar("Step time per method: " + title, "median step time (s)", labels, times,
                        dir.resolve("step_time_" + slug + ".png")));
                files.add(bar("Memory above the base model: " + title, "overhead (MB)", labels, overheads,
                        dir.resolve("overhead_" + slug + ".png")));
            }
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
