package dev.spiel4j.cli;

import dev.spiel4j.service.ClusterNodes;
import org.apache.pekko.actor.typed.ActorSystem;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
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

    @Override
    Result run() throws InterruptedException, ExecutionException {
        if (!join.matches(".+:\\d+")) {
            throw usage("--join " + join + ": expected HOST:PORT of the run's coordinator");
        }
        AtomicReference<Throwable> failure = new AtomicReference<>();
        ActorSystem<?> system = ClusterNodes.startWorker(host, port, join, Optional.ofNullable(device), failure::set);
        String address = ClusterNodes.address(system);
        progress("worker " + address + " joins the run at " + join);
        system.getWhenTerminated().toCompletableFuture().get();
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("worker", address);
        json.put("joined", join);
        json.put("failure", failure.get() == null ? null : failure.get().getMessage());
        return failure.get() == null ? new Result("worker " + address + " left the cluster", json)
                : new Result("worker " + address + " failed", json, "the gradient worker failed: "
                + failure.get().getMessage());
    }
}
