package dev.spiel4j.cli;

import dev.spiel4j.cli.internal.observe.RunHistory;
import dev.spiel4j.cli.internal.observe.RunReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code report}: loss and evaluation curves and the parameter-age histogram as PNGs plus an HTML page. */
@Command(name = "report", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write a run's charts (loss, eval, parameter ages) and report.html into its run directory."
                + " JSON: {\"run_id\", \"html\", \"charts\", \"steps\"}.")
final class ReportCommand extends CliCommand {
    @Option(names = "--run", required = true, paramLabel = "ID", description = "The run id.")
    String runId;

    @Mixin
    RunOptions run;

    @Override
    Result run() throws Exception {
        Path runDir = run.runDir(runId);
        RunHistory history;
        try (RunKafka kafka = RunKafka.open(run.bootstrap, runDir)) {
            history = RunHistory.fromKafka(kafka.bootstrap(), run.topics(), runId, Duration.ofSeconds(30));
        }
        if (history.steps().isEmpty()) {
            throw new CliFailure("run " + runId + " has no metrics on topic " + run.topics().metrics(), null);
        }
        RunReport.Written w = RunReport.write(history, runDir);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("run_id", runId);
        json.put("html", w.html().toString());
        json.put("charts", w.charts().stream().map(Path::toString).toList());
        json.put("steps", history.steps().size());
        return new Result("wrote " + w.html() + " with " + w.charts().size() + " charts", json);
    }
}
