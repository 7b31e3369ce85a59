package dev.spiel4j.cli;

import dev.spiel4j.service.ClusterNodes;
import dev.spiel4j.service.ProgressListener;
import dev.spiel4j.service.RunSummary;
import org.apache.pekko.actor.typed.ActorSystem;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * {@code worker}: a gradient worker of a data-parallel run, a node of the run's Pekko Cluster until the run's
 * coordinator leaves it (README, "Scale-out").
 */
@Command(name = "worker", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Join a data-parallel training run as a gradient worker (until the run ends).",
                "The run's coordinator is `./spiel4j train` with cluster.workers > 0; it prints its address."})
final class WorkerCommand extends CliCommand {

    @Option(names = "--join", paramLabel = "HOST:PORT", required = true,
            description = "The coordinator's cluster address (cluster.host:cluster.port of the run).")
    String join;

    @Option(names = "--host", paramLabel = "HOST", defaultValue = "127.0.0.1",
            description = "Address this worker binds and the coordinator reaches it at (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "0",
            description = "Port this worker binds; 0 = a free one (default).")
    int port;

    @Option(names = "--device", paramLabel = "DEVICE",
            description = "This worker's device (cpu, gpu:N) in place of the run's `device` setting.")
    String device;

    @Option(names = "--standby", description = {"Take the run's coordinator over if its node is lost (resuming from"
            + " the last checkpoint here): this machine must reach the run's directory and Kafka.",
            "`train --workers N` starts its workers so."})
    boolean standby;

    @Override
    Result run() throws InterruptedException, ExecutionException {
        if (!join.matches(".+:\\d+")) {
            throw usage("--join " + join + ": expected HOST:PORT of the run's coordinator");
        }
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CompletableFuture<RunSummary> hostedRun = new CompletableFuture<>();
        ActorSystem<?> system = ClusterNodes.startWorker(host, port, join, Optional.ofNullable(device),
                standby ? Optional.of(new ClusterNodes.Standby(ProgressListener.terminal(this::progress), hostedRun))
                        : Optional.empty(), failure::set);
        String address = ClusterNodes.address(system);
        progress("worker " + address + " joins the run at " + join + (standby ? " (standby coordinator)" : ""));
        system.getWhenTerminated().toCompletableFuture().get();
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("worker", address);
        json.put("joined", join);
        // a standby that took the run over reports how the run ended here
        RunSummary hosted = hostedRun.isDone() && !hostedRun.isCompletedExceptionally() ? hostedRun.get() : null;
        json.put("hosted_run_outcome", hosted == null ? null : hosted.outcome().name());
        json.put("hosted_run_steps", hosted == null ? null : hosted.steps());
        Throwable hostedFailure = hostedRun.handle((summary, e) -> e).getNow(null);
        json.put("hosted_run_failure", hostedFailure == null ? null : hostedFailure.getMessage());
        json.put("failure", failure.get() == null ? null : failure.get().getMessage());
        String left = "worker " + address + " left the cluster" + (hosted == null ? "" : ", after it took run "
                + hosted.runId() + " over from its lost coordinator: " + hosted.outcome().name().toLowerCase()
                + " after " + hosted.steps() + " steps");
        if (hostedFailure != null) {
            return new Result("worker " + address + " failed", json, "taking the run over from its lost coordinator"
                    + " failed: " + hostedFailure.getMessage());
        }
        return failure.get() == null ? new Result(left, json)
                : new Result("worker " + address + " failed", json, "the gradient worker failed: "
                + failure.get().getMessage());
    }
}
