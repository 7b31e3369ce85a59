package dev.spiel4j.cli.internal.observe;

import dev.spiel4j.report.Chart;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.function.Function;

/**
 * Writes a run's report: PNG charts of the loss (train and evaluation), of the evaluation accuracy and of the slot
 * ages at the end (the paper's Figure 2), and {@code report.html} showing them under a table of the final numbers.
 * A chart without data (no evaluation with an accuracy, no reselection as for LoRA) is left out and the page says
 * so.
 */
public final class RunReport {
    public static final String HTML = "report.html";
    public static final String LOSS_PNG = "loss.png";
    public static final String ACCURACY_PNG = "eval_accuracy.png";
    public static final String AGES_PNG = "age_histogram.png";

    private RunReport() {
    }

    /** What was written: the page and the charts it shows. */
    public record Written(Path html, List<Path> charts) {
        public Written {
            charts = List.copyOf(charts);
        }
    }

    /** Reads {@code runDir}'s metrics and events and writes the report into it. */
    public static Written write(Path runDir) {
        return write(RunHistory.read(runDir), runDir);
    }

    /** Writes the report of {@code history} into {@code outDir} (created when needed), replacing an older one. */
    public static Written write(RunHistory history, Path outDir) {
        List<Path> charts = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        StringBuilder figures = new StringBuilder();

        if (history.steps().isEmpty()) {
            missing.add("loss curve: no steps were reported yet");
        } else {
            Path file = outDir.resolve(LOSS_PNG);
            lossChart(history).writePng(file);
            charts.add(file);
            figure(figures, LOSS_PNG, "Training and evaluation loss");
        }

        List<Chart.Series> accuracy = evalSeries(history, e -> e.accuracy());
        if (accuracy.isEmpty()) {
            missing.add("evaluation accuracy: no multiple-choice evaluation was reported");
        } else {
            Path file = outDir.resolve(ACCURACY_PNG);
            Chart.lines("Evaluation accuracy", "step", "accuracy", accuracy).writePng(file);
            charts.add(file);
            figure(figures, ACCURACY_PNG, "Multiple-choice accuracy");
        }

        Optional<RunHistory.Selection> last = history.lastSelection().filter(s -> !s.counts().isEmpty());
        if (last.isEmpty()) {
            missing.add("parameter ages: no reselection with an age histogram was reported (not a SpIEL run, or "
                    + "no reselection yet)");
        } else {
            Path file = outDir.resolve(AGES_PNG);
            agesChart(last.get()).writePng(file);
            charts.add(file);
            figure(figures, AGES_PNG, "Ages of the active slots after the last reselection (step "
                    + last.get().step() + "), as in the paper's Figure 2");
        }

        Path html = outDir.resolve(HTML);
        try {
            Files.createDirectories(outDir);
            Files.writeString(html, page(history, figures, missing), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + html, e);
        }
        return new Written(html, charts);
    }

    private static Chart lossChart(RunHistory h) {
        List<Chart.Series> series = new ArrayList<>();
        series.add(new Chart.Series("train", h.steps().stream().mapToDouble(RunHistory.Step::step).toArray(),
                h.steps().stream().mapToDouble(RunHistory.Step::loss).toArray()));
        List<Chart.Series> eval = evalSeries(h, e -> e.loss());
        if (eval.isEmpty()) {
            // Evaluation losses carried by the metrics alone.
            List<RunHistory.Step> withEval = h.steps().stream().filter(s -> s.evalLoss().isPresent()).toList();
            if (!withEval.isEmpty()) {
                eval = List.of(new Chart.Series("eval", withEval.stream().mapToDouble(RunHistory.Step::step).toArray(),
                        withEval.stream().mapToDouble(s -> s.evalLoss().getAsDouble()).toArray()));
            }
        }
        series.addAll(eval);
        return Chart.lines("Loss", "step", "nats per token", series);
    }

    /** One series per data set of the evaluations that carry {@code value}. */
    private static List<Chart.Series> evalSeries(RunHistory h, Function<RunHistory.Evaluation, OptionalDouble> value) {
        Map<String, List<RunHistory.Evaluation>> byDataset = new LinkedHashMap<>();
        for (RunHistory.Evaluation e : h.evaluations()) {
            if (value.apply(e).isPresent()) {
                byDataset.computeIfAbsent(e.dataset(), k -> new ArrayList<>()).add(e);
            }
        }
        List<Chart.Series> series = new ArrayList<>();
        byDataset.forEach((dataset, evals) -> series.add(new Chart.Series("eval " + dataset,
                evals.stream().mapToDouble(RunHistory.Evaluation::step).toArray(),
                evals.stream().mapToDouble(e -> value.apply(e).getAsDouble()).toArray())));
        return series;
    }

    /** Bars of the share of slots per age bucket; bucket {@code [a, b)} is labelled {@code a-(b-1)}. */
    private static Chart agesChart(RunHistory.Selection s) {
        long total = s.counts().stream().mapToLong(Long::longValue).sum();
        List<String> labels = new ArrayList<>();
        double[] shares = new double[s.counts().size()];
        for (int i = 0; i < shares.length; i++) {
            long from = s.bucketEdges().get(i);
            long to = s.bucketEdges().get(i + 1) - 1;
            labels.add(from == to ? Long.toString(from) : from + "-" + to);
            shares[i] = total == 0 ? 0 : 100.0 * s.counts().get(i) / total;
        }
        return Chart.bars("Slot ages at step " + s.step() + " (" + total + " active slots)",
                "age: update steps since the slot was last grown", "share of slots (%)", labels, shares);
    }

    private static void figure(StringBuilder out, String file, String caption) {
        out.append("<figure><img src=\"").append(file).append("\" alt=\"").append(escape(caption))
                .append("\"><figcaption>").append(escape(caption)).append("</figcaption></figure>\n");
    }

    private static String page(RunHistory h, StringBuilder figures, List<String> missing) {
        String title = "spiel4j run " + (h.runId().isEmpty() ? "(unnamed)" : h.runId());
        StringBuilder out = new StringBuilder();
        out.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").append(escape(title))
                .append("</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
                        + "td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
                        + "figure{margin:1.5em 0}</style></head>\n<body>\n<h1>").append(escape(title))
                .append("</h1>\n<table>\n");
        for (Map.Entry<String, String> row : finalNumbers(h).entrySet()) {
            out.append("<tr><th>").append(escape(row.getKey())).append("</th><td>").append(escape(row.getValue()))
                    .append("</td></tr>\n");
        }
        out.append("</table>\n").append(figures);
        if (!missing.isEmpty()) {
            out.append("<p>Not shown:</p>\n<ul>\n");
            missing.forEach(m -> out.append("<li>").append(escape(m)).append("</li>\n"));
            out.append("</ul>\n");
        }
        return out.append("</body></html>\n").toString();
    }

    /** The table's rows, in order. */
    static Map<String, String> finalNumbers(RunHistory h) {
        Map<String, String> rows = new LinkedHashMap<>();
        rows.put("status", h.lastStatus().map(s -> s.state() + (s.message().isEmpty() ? "" : ": " + s.message()))
                .orElse("unknown"));
        h.lastStep().ifPresent(last -> {
            rows.put("steps", last.totalSteps() > 0 ? last.step() + " of " + last.totalSteps()
                    : Long.toString(last.step()));
            rows.put("final train loss", number(last.loss()));
            int tail = Math.max(1, h.steps().size() / 10);
            rows.put("mean train loss, last " + tail + " steps", number(h.steps().subList(h.steps().size() - tail,
                    h.steps().size()).stream().mapToDouble(RunHistory.Step::loss).average().orElseThrow()));
            rows.put("final learning rate", String.format(Locale.ROOT, "%.2e", last.lr()));
            rows.put("mean tokens/s", String.format(Locale.ROOT, "%.0f",
                    h.steps().stream().mapToDouble(RunHistory.Step::tokensPerSecond).average().orElseThrow()));
            rows.put("training time (sum of step times)", String.format(Locale.ROOT, "%.1f s",
                    h.steps().stream().mapToDouble(RunHistory.Step::stepSeconds).sum()));
        });
        Map<String, RunHistory.Evaluation> lastEval = new LinkedHashMap<>();
        h.evaluations().forEach(e -> lastEval.put(e.dataset(), e));
        lastEval.forEach((dataset, e) -> {
            List<String> parts = new ArrayList<>();
            e.accuracy().ifPresent(a -> parts.add("accuracy " + number(a)));
            e.loss().ifPresent(l -> parts.add("loss " + number(l)));
            parts.add(e.examples() + " examples, step " + e.step());
            rows.put("eval " + dataset, String.join(", ", parts));
        });
        h.lastSelection().ifPresent(s -> {
            rows.put("reselections", Integer.toString(h.selections().size()));
            rows.put("active slots at the end", s.active() + " in " + s.modules() + " modules");
        });
        rows.put("checkpoints", h.checkpoints().isEmpty() ? "none" : h.checkpoints().size() + ", last "
                + h.checkpoints().get(h.checkpoints().size() - 1).path());
        if (h.workersLost() > 0) {
            rows.put("Gradient workers lost", Integer.toString(h.workersLost()));
        }
        if (h.outages() > 0) {
            rows.put("Kafka outages", Integer.toString(h.outages()));
        }
        return rows;
    }

    private static String number(double v) {
        return String.format(Locale.ROOT, "%.4f", v);
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
