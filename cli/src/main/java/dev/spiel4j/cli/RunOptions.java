package dev.spiel4j.cli;

import dev.spiel4j.kafka.Topics;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Which run a command reads, and where its topics are: shared by {@code watch}, {@code pull}, {@code report} and {@code dead-letters}. */
final class RunOptions {
    @Option(names = "--runs-dir", defaultValue = "runs", paramLabel = "DIR",
            description = "Parent directory of run directories (run.dir). Default: ${DEFAULT-VALUE}.")
    Path runsDir;

    @Option(names = "--bootstrap", paramLabel = "HOST:PORT",
            description = "Kafka bootstrap servers (default: the run's own Kafka, restarted from its directory if needed).")
    String bootstrap;

    @Option(names = "--topic-prefix", defaultValue = "spiel4j.", paramLabel = "PREFIX",
            description = "Topic prefix (kafka.topic-prefix). Default: ${DEFAULT-VALUE}.")
    String topicPrefix;

    Topics topics() {
        return Topics.withPrefix(topicPrefix);
    }

    Path runDir(String runId) {
        return runsDir.resolve(runId);
    }
}
