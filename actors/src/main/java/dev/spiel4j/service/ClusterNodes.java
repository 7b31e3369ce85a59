package dev.spiel4j.service;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.spiel4j.config.RunSettings;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.ChildFailed;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.cluster.typed.JoinSeedNodes;
import org.apache.pekko.cluster.typed.Subscribe;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The nodes of a data-parallel run's Pekko Cluster: the coordinator (the run's own actor system, see
 * {@link TrainingService}) and gradient workers ({@link #startWorker}). Every node runs with the
 * {@code spiel4j-cluster-node} settings of {@code reference.conf} (Artery TCP, split-brain resolver) and one role.
 */
public final class ClusterNodes {
    /** The actor system's name: nodes of one cluster share it. */
    public static final String SYSTEM = "spiel4j";
    static final String COORDINATOR = "coordinator";
    static final String WORKER = "worker";

    private ClusterNodes() {
    }

    /** {@code base} with the cluster node settings, bound to {@code host:port} (0: a free port), in {@code role}. */
    static Config nodeConfig(Config base, String host, int port, String role) {
        return ConfigFactory.parseMap(Map.of("pekko.remote.artery.canonical.hostname", host,
                        "pekko.remote.artery.canonical.port", port, "pekko.cluster.roles", List.of(role)))
                .withFallback(base.getConfig("spiel4j-cluster-node"))
                .withFallback(base);
    }

    /** Makes the coordinator's system a cluster of its own, which workers then join. */
    static void formCluster(ActorSystem<?> coordinator) {
        Cluster cluster = Cluster.get(coordinator);
        cluster.manager().tell(Join.create(cluster.selfMember().address()));
    }

    /** {@code host:port} of a cluster node, what {@code ./spiel4j worker --join} takes. */
    public static String address(ActorSystem<?> system) {
        Address a = Cluster.get(system).selfMember().address();
        return a.getHost().orElseThrow() + ":" + a.getPort().orElseThrow();
    }

    /**
     * Starts a gradient worker bound to {@code host:port} that joins the cluster whose coordinator is at
     * {@code join} ({@code HOST:PORT}). Its system terminates when the worker fails or the coordinator leaves.
     *
     * @param device    the worker's device setting (e.g. {@code gpu:0}) in place of the run's; empty: the run's
     * @param onFailure told why the worker failed (its replica refused or could not be kept), before the system ends
     */
    public static ActorSystem<ClusterEvent.MemberEvent> startWorker(String host, int port, String join,
                                                                    Optional<String> device,
                                                                    Consumer<Throwable> onFailure) {
        int colon = join.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("--join " + join + ": expected HOST:PORT of the run's coordinator");
        }
        Address seed = new Address("pekko", SYSTEM, join.substring(0, colon), Integer.parseInt(join.substring(colon + 1)));
        Config config = nodeConfig(ConfigFactory.load(), host, port, WORKER);
        return ActorSystem.create(workerGuardian(seed, device, onFailure), SYSTEM, config);
    }

    private static Behavior<ClusterEvent.MemberEvent> workerGuardian(Address seed, Optional<String> device,
                                                                     Consumer<Throwable> onFailure) {
        return Behaviors.setup(ctx -> {
            Cluster cluster = Cluster.get(ctx.getSystem());
            cluster.manager().tell(new JoinSeedNodes(List.of(seed)));
            cluster.subscriptions().tell(Subscribe.create(ctx.getSelf(), ClusterEvent.MemberEvent.class));
            // not restarted: a failed worker's replica could be anywhere, so it leaves and the run goes on without it
            ActorRef<GradientWorker.Command> worker = ctx.spawn(GradientWorker.create(device), "gradient-worker",
                    DispatcherSelector.fromConfig(RunSettings.ROOT + ".trainer-dispatcher"));
            ctx.watch(worker);
            return Behaviors.receive(ClusterEvent.MemberEvent.class)
                    .onMessage(ClusterEvent.MemberRemoved.class, m -> m.member().hasRole(COORDINATOR)
                            ? Behaviors.stopped() : Behaviors.same())
                    .onMessage(ClusterEvent.MemberEvent.class, m -> Behaviors.same())
                    .onSignal(ChildFailed.class, f -> {
                        onFailure.accept(f.getCause());
                        return Behaviors.stopped();
                    })
                    .onSignal(Terminated.class, t -> Behaviors.stopped())
                    .build();
        });
    }
}
