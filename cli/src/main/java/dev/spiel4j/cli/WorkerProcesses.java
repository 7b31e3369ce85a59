package dev.spiel4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.bench.ChildRunner;
import dev.spiel4j.io.JsonFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Gradient worker JVMs on this machine for {@code train --workers N}: each runs {@code spiel4j worker --join} against
 * the coordinator with this JVM's class path and options, as a standby that can take the run's coordinator over
 * (this machine has the run's directory), its output in {@code <dir>/worker-<i>.log} (its progress, and its JSON
 * result as the last line). A worker leaves by itself when the run ends; closing ends those still there.
 */
final class WorkerProcesses implements AutoCloseable {
    private final List<Process> processes = new ArrayList<>();
    private final List<Path> logs = new ArrayList<>();

    private WorkerProcesses() {
    }

    /** Starts {@code count} workers that join the coordinator at {@code join} ({@code HOST:PORT}). */
    static WorkerProcesses start(int count, String join, String host, Path logDir) {
        WorkerProcesses workers = new WorkerProcesses();
        try {
            Files.createDirectories(logDir);
            List<String> jvmOptions = ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                    .filter(o -> !o.startsWith("-agentlib:") && !o.startsWith("-javaagent:")).toList();
            List<String> command = ChildRunner.javaCommand(Main.class.getName(), jvmOptions,
                    List.of("worker", "--join", join, "--host", host, "--standby", "--json"));
            for (int i = 0; i < count; i++) {
                Path log = logDir.resolve("worker-" + i + ".log");
                workers.logs.add(log);
                workers.processes.add(new ProcessBuilder(command).redirectErrorStream(true)
                        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start());
            }
            return workers;
        } catch (IOException e) {
            workers.close();
            throw new UncheckedIOException("cannot start the gradient workers: " + e.getMessage(), e);
        }
    }

    /**
     * Waits for every worker to end by itself (no limit: a standby that took the run over trains to its end) and
     * returns the result of the one that hosted the run, if one did.
     */
    Optional<JsonNode> awaitHostedRun() throws InterruptedException {
        for (Process p : processes) {
            p.waitFor();
        }
        for (Path log : logs) {
            try {
                List<String> lines = Files.readAllLines(log);
                String last = lines.isEmpty() ? "" : lines.get(lines.size() - 1);
                if (last.startsWith("{")) {
                    JsonNode result = JsonFiles.MAPPER.readTree(last);
                    if (result.hasNonNull("hosted_run_outcome") || result.hasNonNull("hosted_run_failure")) {
                        return Optional.of(result);
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the worker log " + log + ": " + e.getMessage(), e);
            }
        }
        return Optional.empty();
    }

    @Override
    public void close() {
        for (Process p : processes) {
            p.destroy(); // SIGTERM: the worker leaves the cluster
        }
        for (Process p : processes) {
            try {
                if (!p.waitFor(30, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                p.destroyForcibly();
            }
        }
    }
}
