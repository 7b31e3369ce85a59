package dev.spiel4j.service;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.ClusterSingleton;
import org.apache.pekko.cluster.typed.ClusterSingletonSettings;
import org.apache.pekko.cluster.typed.SingletonActor;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * The nodes of a data-parallel run's Pekko Cluster: the coordinator's (the node {@link TrainingService} starts) and
 * gradient workers' ({@link #startWorker}), each guarded by a {@link ClusterNode}. Every node runs with the
 * {@code spiel4j-cluster-node} settings of {@code reference.conf} (Artery TCP, split-brain resolver) and its roles:
 * {@value #COORDINATOR} where the run's coordinator, a cluster singleton, can run, {@value #WORKER} where a gradient
 * worker does.
 */
public final class ClusterNodes {
    /** The actor system's name: nodes of one cluster share it. */
    public static final String SYSTEM = "spiel4j";
    static final String COORDINATOR = "coordinator";
    static final String WORKER = "worker";
    /** The run's coordinator's name as the cluster's singleton. */
    private static final String RUN_SINGLETON = "run";

    private ClusterNodes() {
    }

    /** {@code base} with the cluster node settings, bound to {@code host:port} (0: a free port), in {@code roles}. */
    static Config nodeConfig(Config base, String host, int port, List<String> roles) {
        return ConfigFactory.parseMap(Map.of("pekko.remote.artery.canonical.hostname", host,
                        "pekko.remote.artery.canonical.port", port, "pekko.cluster.roles", roles))
                .withFallback(base.getConfig("spiel4j-cluster-node"))
                .withFallback(base);
    }

    /**
     * The run's coordinator {@code run} as the cluster's singleton: it runs on the oldest node with the
     * {@link #COORDINATOR} role and moves to the next one when that node is lost. On a hand-over it is told to
     * {@link RunSupervisor.Stop} (a final checkpoint first).
     */
    static ActorRef<RunSupervisor.Command> initRunSingleton(ActorSystem<?> system, Behavior<RunSupervisor.Command> run) {
        return ClusterSingleton.get(system).init(SingletonActor.of(run, RUN_SINGLETON)
                .withStopMessage(new RunSupervisor.Stop())
                .withSettings(ClusterSingletonSettings.create(system).withRole(COORDINATOR)));
    }

    /** {@code host:port} of a cluster node, what {@code ./spiel4j worker --join} takes. */
    public static String address(ActorSystem<?> system) {
        Address a = Cluster.get(system).selfMember().address();
        return a.getHost().orElseThrow() + ":" + a.getPort().orElseThrow();
    }

    /**
     * Starts a gradient worker bound to {@code host:port} that joins the cluster whose coordinator is at
     * {@code join} ({@code HOST:PORT}). Its system terminates when the run ends, when the worker fails, or when no
     * node that can host the run's coordinator is left.
     *
     * @param device    the worker's device setting (e.g. {@code gpu:0}) in place of the run's; empty: the run's
     * @param standby   present: this worker can take the run's coordinator over when its node is lost (this machine
     *                  must reach the run's directory and Kafka); the run it then hosts reports to the listener and
     *                  completes the future
     * @param onFailure told why the worker failed (its replica refused or could not be kept), before the system ends
     */
    public static ActorSystem<?> startWorker(String host, int port, String join, Optional<String> device,
                                             Optional<Standby> standby, Consumer<Throwable> onFailure) {
        int colon = join.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("--join " + join + ": expected HOST:PORT of the run's coordinator");
        }
        Address seed = new Address("pekko", SYSTEM, join.substring(0, colon), Integer.parseInt(join.substring(colon + 1)));
        Config config = nodeConfig(ConfigFactory.load(), host, port,
                standby.isPresent() ? List.of(WORKER, COORDINATOR) : List.of(WORKER));
        return ActorSystem.create(ClusterNode.worker(seed, device, standby, onFailure), SYSTEM, config);
    }

    /** How a standby worker's node reports a run it took over. */
    public record Standby(ProgressListener listener, CompletableFuture<RunSummary> hostedRun) {
    }
}
