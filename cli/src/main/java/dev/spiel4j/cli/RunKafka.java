package dev.spiel4j.cli;

import dev.spiel4j.kafka.EmbeddedKafka;
import dev.spiel4j.service.RunSupervisor;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The Kafka that holds a run's topics, for the commands that read them ({@code watch}, {@code pull}, {@code report}):
 * an address given with {@code --bootstrap}; else the one the run wrote into its directory, while that broker is
 * reachable (a run in progress, or an external cluster); else the run's embedded broker restarted on its kept log
 * directory (a finished run with the default embedded Kafka).
 */
final class RunKafka implements AutoCloseable {
    private final String bootstrap;
    private final EmbeddedKafka restarted;

    private RunKafka(String bootstrap, EmbeddedKafka restarted) {
        this.bootstrap = bootstrap;
        this.restarted = restarted;
    }

    static RunKafka open(String bootstrapOption, Path runDir) throws IOException {
        if (bootstrapOption != null) {
            return new RunKafka(bootstrapOption, null);
        }
        Path file = runDir.resolve(RunSupervisor.BOOTSTRAP_FILE);
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("no run at " + runDir + " (no " + RunSupervisor.BOOTSTRAP_FILE
                    + "); give --runs-dir or --bootstrap");
        }
        String recorded = Files.readString(file).strip();
        if (reachable(recorded)) {
            return new RunKafka(recorded, null);
        }
        Path log = runDir.resolve(RunSupervisor.EMBEDDED_KAFKA_DIR);
        if (!Files.isDirectory(log)) {
            throw new IllegalArgumentException("the run's Kafka at " + recorded + " is not reachable and the run has"
                    + " no embedded broker log in " + log);
        }
        EmbeddedKafka kafka = EmbeddedKafka.start(log, 0);
        return new RunKafka(kafka.bootstrapServers(), kafka);
    }

    String bootstrap() {
        return bootstrap;
    }

    private static boolean reachable(String bootstrap) {
        for (String server : bootstrap.split(",")) {
            int colon = server.lastIndexOf(':');
            if (colon < 0) {
                continue;
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(server.substring(0, colon), Integer.parseInt(server.substring(colon + 1))),
                        500);
                return true;
            } catch (IOException | NumberFormatException e) {
                // try the next one
            }
        }
        return false;
    }

    @Override
    public void close() {
        if (restarted != null) {
            restarted.close();
        }
    }
}
