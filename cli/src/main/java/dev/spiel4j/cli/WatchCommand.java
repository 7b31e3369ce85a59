package dev.spiel4j.cli;

import dev.spiel4j.cli.internal.observe.RunWatcher;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/** {@code watch}: a run's metrics and events from Kafka as they arrive (one line each, on stderr). */
@Command(name = "watch", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Follow a run's metrics and events from Kafka, live. JSON: {\"run_id\", \"end\", \"state\","
                + " \"steps\", \"events\"}.")
final class WatchCommand extends CliCommand {
    @Option(names = "--run", paramLabel = "ID",
            description = "The run to follow (default: the most recently started run in --runs-dir).")
    String runId;

    @Option(names = "--timeout", defaultValue = "PT1H", paramLabel = "DURATION",
            description = "Stop after this long (ISO-8601, e.g. PT10M). Default: ${DEFAULT-VALUE}.")
    Duration timeout;

    @Mixin
    RunOptions run;

    @Override
    Result run() throws Exception {
        String id = runId != null ? runId : latestRun();
        try (RunKafka kafka = RunKafka.open(run.bootstrap, run.runDir(id))) {
            RunWatcher.Outcome o = new RunWatcher(kafka.bootstrap(), run.topics(), stderr()).watch(id, true, timeout);
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("run_id", id);
            json.put("end", o.end().name());
            json.put("state", o.finalState().map(Enum::name).orElse(null));
            json.put("steps", o.steps());
            json.put("events", o.events());
            return new Result("run " + id + ": " + o.end().name().toLowerCase() + " after " + o.steps() + " steps, "
                    + o.events() + " events", json);
        }
    }

    private String latestRun() throws Exception {
        if (!Files.isDirectory(run.runsDir)) {
            throw usage("no --run given and no runs directory " + run.runsDir);
        }
        try (Stream<Path> dirs = Files.list(run.runsDir)) {
            return dirs.filter(Files::isDirectory)
                    .max(Comparator.comparingLong(d -> d.toFile().lastModified()))
                    .map(d -> d.getFileName().toString())
                    .orElseThrow(() -> usage("no --run given and no run in " + run.runsDir));
        }
    }
}
