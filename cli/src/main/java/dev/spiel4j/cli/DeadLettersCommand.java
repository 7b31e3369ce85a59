package dev.spiel4j.cli;

import dev.spiel4j.cli.internal.observe.DeadLetters;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code dead-letters}: the records a run could not use, each with its source position, reason and an excerpt. */
@Command(name = "dead-letters", mixinStandardHelpOptions = true, sortOptions = false,
        description = "List the records a run could not use. JSON: {\"run_id\", \"count\", \"dead_letters\": [{\"source\","
                + " \"reason\", \"detail\", \"excerpt\"}]}.")
final class DeadLettersCommand extends CliCommand {
    @Option(names = "--run", required = true, paramLabel = "ID", description = "The run id.")
    String runId;

    @Mixin
    RunOptions run;

    @Override
    Result run() throws Exception {
        try (RunKafka kafka = RunKafka.open(run.bootstrap, run.runDir(runId))) {
            List<DeadLetters.Entry> entries = DeadLetters.read(kafka.bootstrap(), run.topics(), runId,
                    Duration.ofSeconds(60));
            StringBuilder text = new StringBuilder(entries.size() + " dead letter(s) in run " + runId);
            List<Map<String, Object>> rows = new ArrayList<>();
            for (DeadLetters.Entry e : entries) {
                text.append('\n').append(e.source()).append(": ").append(e.reason()).append(" (").append(e.detail())
                        .append(")\n    ").append(e.excerpt());
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("source", e.source());
                row.put("reason", e.reason());
                row.put("detail", e.detail());
                row.put("excerpt", e.excerpt());
                rows.add(row);
            }
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("run_id", runId);
            json.put("count", entries.size());
            json.put("dead_letters", rows);
            return new Result(text.toString(), json);
        }
    }
}
