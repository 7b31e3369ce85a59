package dev.spiel4j.cli;

import dev.spiel4j.cli.internal.observe.RunPull;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code pull}: the latest sparse fine-tuning of a run, rebuilt from the checkpoints topic alone, checksums verified. */
@Command(name = "pull", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Rebuild a run's latest sparse fine-tuning from Kafka. JSON: {\"run_id\", \"checkpoint\", \"step\","
                + " \"method\", \"out\", \"deltas\", \"modules\"}.")
final class PullCommand extends CliCommand {
    @Option(names = "--run", required = true, paramLabel = "ID", description = "The run id.")
    String runId;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the fine-tuning.")
    Path out;

    @Mixin
    RunOptions run;

    @Override
    Result run() throws Exception {
        try (RunKafka kafka = RunKafka.open(run.bootstrap, run.runDir(runId))) {
            RunPull.Pulled p = RunPull.pull(kafka.bootstrap(), run.topics(), runId, out, Duration.ofSeconds(60))
                    .orElseThrow(() -> new CliFailure("run " + runId + " has no checkpoint on topic "
                            + run.topics().checkpoints(), null));
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("run_id", p.runId());
            json.put("checkpoint", p.checkpointId());
            json.put("step", p.step());
            json.put("method", p.method());
            json.put("out", p.file().toString());
            json.put("deltas", p.deltas());
            json.put("modules", p.modules());
            return new Result(String.format("pulled checkpoint %s (step %d, %s, %d deltas in %d modules) of run %s to %s",
                    p.checkpointId(), p.step(), p.method(), p.deltas(), p.modules(), p.runId(), p.file()), json);
        }
    }
}
