package dev.spiel4j.service;

import dev.spiel4j.config.RunSettings;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.ChildFailed;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.cluster.typed.JoinSeedNodes;
import org.apache.pekko.cluster.typed.Leave;
import org.apache.pekko.cluster.typed.Subscribe;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * The guardian of one node of a data-parallel run's Pekko Cluster. The run's coordinator (its
 * {@link RunSupervisor}) is the cluster's singleton ({@link ClusterNodes#initRunSingleton}) on the oldest node with
 * the {@code coordinator} role: the node {@code ./spiel4j train} started, and after it standby workers, which can
 * take the run over when that node is lost (it then resumes from the run's last checkpoint there). A worker node
 * also holds a {@link GradientWorker}.
 *
 * <p>The node where the run ends (its singleton's summary completes here while the node is up) ends the cluster: it
 * tells every worker to leave, waits until the other nodes are gone, so that no standby is left to take the ended run
 * over, and then stops, which shuts its actor system down. A node that was downed or is leaving when its singleton
 * stops has only handed the run over: it stops alone. A worker node stops when its worker stops (told to leave, or failed), or
 * when no node that can host the coordinator is left.
 */
final class ClusterNode extends AbstractBehavior<ClusterNode.Command> {

    sealed interface Command {
    }

    /** The run's coordinator (its singleton instance) started on this node. */
    private record HostingRun() implements Command {
    }

    /** The run hosted on this node has ended, with a summary or a failure: the cluster ends with it. */
    private record HostedRunEnded(String outcome, boolean failed) implements Command {
    }

    /** This node's gradient worker became a replica of the run {@code runConfig}. */
    private record ReplicaSynced(String runConfig) implements Command {
    }

    private record WorkersListed(Receptionist.Listing listing) implements Command {
    }

    private record MemberChanged(ClusterEvent.MemberEvent event) implements Command {
    }

    /** The other nodes have not left in time: this one ends anyway. */
    private record EndTimedOut() implements Command {
    }

    /** How long the node where the run ended waits for the other nodes to leave. */
    private static final Duration END_TIMEOUT = Duration.ofSeconds(30);

    /**
     * The node {@code ./spiel4j train} started: it forms the cluster and hosts the run first.
     *
     * @param run   the run's summary on this node (the singleton's {@code result})
     * @param ended completed once the run has ended here and the other nodes have left (or did not in time), or
     *              the node has stopped: true when the run moved to another node (this one was downed while the
     *              run went on: a standby took it over)
     */
    static Behavior<Command> coordinator(CompletableFuture<RunSummary> run, CompletableFuture<Boolean> ended) {
        return Behaviors.setup(ctx -> {
            Cluster cluster = Cluster.get(ctx.getSystem());
            cluster.manager().tell(Join.create(cluster.selfMember().address()));
            return new ClusterNode(ctx, run, ended, Optional.empty(), Optional.empty(), ignored -> { });
        });
    }

    /**
     * A worker node that joins the cluster at {@code seed}.
     *
     * @param standby   present: the node can take the run's coordinator over (it has the coordinator role)
     * @param onFailure told why the worker failed (its replica refused or could not be kept), before the node stops
     */
    static Behavior<Command> worker(Address seed, Optional<String> device, Optional<ClusterNodes.Standby> standby,
                                    Consumer<Throwable> onFailure) {
        return Behaviors.setup(ctx -> {
            Cluster.get(ctx.getSystem()).manager().tell(new JoinSeedNodes(List.of(seed)));
            // not restarted: a failed worker's replica could be anywhere, so it leaves and the run goes on without it
            ActorRef<GradientWorker.Command> worker = ctx.spawn(
                    GradientWorker.create(device, ctx.messageAdapter(GradientWorker.Synced.class,
                            s -> new ReplicaSynced(s.runConfig()))),
                    "gradient-worker", DispatcherSelector.fromConfig(RunSettings.ROOT + ".trainer-dispatcher"));
            ctx.watch(worker);
            return new ClusterNode(ctx, standby.map(ClusterNodes.Standby::hostedRun).orElseGet(CompletableFuture::new),
                    new CompletableFuture<>(), standby, device, onFailure);
        });
    }

    private final Cluster cluster;
    private final Optional<ClusterNodes.Standby> standby;
    private final Optional<String> device;
    private final Consumer<Throwable> onFailure;
    private final CompletableFuture<Boolean> ended;
    /** The cluster's members as this node last heard of them. */
    private final Map<Address, Member> members = new HashMap<>();
    private Set<ActorRef<GradientWorker.Command>> workers = Set.of();
    private boolean hosting;
    private boolean standingBy;
    private boolean ending;
    private boolean selfDowned;

    private ClusterNode(ActorContext<Command> ctx, CompletableFuture<RunSummary> hostedRun,
                        CompletableFuture<Boolean> ended, Optional<ClusterNodes.Standby> standby, Optional<String> device,
                        Consumer<Throwable> onFailure) {
        super(ctx);
        this.ended = ended;
        this.cluster = Cluster.get(ctx.getSystem());
        this.standby = standby;
        this.device = device;
        this.onFailure = onFailure;
        cluster.state().getMembers().forEach(x -> members.put(x.address(), x));
        cluster.subscriptions().tell(Subscribe.create(
                ctx.messageAdapter(ClusterEvent.MemberEvent.class, MemberChanged::new), ClusterEvent.MemberEvent.class));
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(GradientWorker.KEY,
                ctx.messageAdapter(Receptionist.Listing.class, WorkersListed::new)));
        ActorRef<Command> self = ctx.getSelf();
        hostedRun.whenComplete((s, e) -> self.tell(s != null
                ? new HostedRunEnded(s.outcome().name().toLowerCase(), false)
                : new HostedRunEnded("failed: " + e.getMessage(), true)));
    }

    /** The run's coordinator as this node's behavior factory makes it: it says so to the node when it starts. */
    static Behavior<RunSupervisor.Command> hosted(ActorRef<Command> node, Behavior<RunSupervisor.Command> run) {
        return Behaviors.setup(ctx -> {
            node.tell(new HostingRun());
            return run;
        });
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(HostingRun.class, m -> onHostingRun())
                .onMessage(HostedRunEnded.class, this::onHostedRunEnded)
                .onMessage(ReplicaSynced.class, this::onReplicaSynced)
                .onMessage(WorkersListed.class, this::onWorkersListed)
                .onMessage(MemberChanged.class, this::onMemberChanged)
                .onMessage(EndTimedOut.class, m -> onEndTimedOut())
                .onSignal(ChildFailed.class, this::onWorkerFailed)
                .onSignal(Terminated.class, t -> hosting ? this : leave())
                .onSignal(PostStop.class, s -> {
                    ended.complete(downed()); // stopped with its system before the run ended here
                    return this;
                })
                .build();
    }

    private Behavior<Command> onHostingRun() {
        hosting = true;
        getContext().getLog().info("this node hosts the run's coordinator");
        return this;
    }

    /** A standby becomes a candidate host once it knows the run: from its worker's first sync. */
    private Behavior<Command> onReplicaSynced(ReplicaSynced m) {
        if (standby.isPresent() && !standingBy) {
            standingBy = true;
            ClusterNodes.Standby s = standby.get();
            RunSettings settings = RunSettings.fromRendered(m.runConfig(), device);
            ClusterNodes.initRunSingleton(getContext().getSystem(), hosted(getContext().getSelf(),
                    RunSupervisor.create(settings, s.listener(), s.hostedRun(), FailureInjection.NONE)));
        }
        return this;
    }

    private Behavior<Command> onHostedRunEnded(HostedRunEnded m) {
        if (cluster.selfMember().status() != MemberStatus.up() || downed()) {
            // this node was downed or is leaving: its singleton was stopped to move, the run goes on elsewhere
            getContext().getLog().warn("the run's coordinator left this node ({}), which is {}: the run moves to a "
                    + "standby", m.outcome(), cluster.selfMember().status());
            ended.complete(true);
            return Behaviors.stopped();
        }
        ending = true;
        if (m.failed()) {
            getContext().getLog().warn("the run hosted here {}: its {} worker(s) leave the cluster", m.outcome(),
                    workers.size());
        } else {
            getContext().getLog().info("the run ended ({}): its {} worker(s) leave the cluster", m.outcome(),
                    workers.size());
        }
        workers.forEach(w -> w.tell(new GradientWorker.Leave("the run ended: " + m.outcome())));
        getContext().scheduleOnce(END_TIMEOUT, getContext().getSelf(), new EndTimedOut());
        return endIfAlone();
    }

    private Behavior<Command> onWorkersListed(WorkersListed m) {
        workers = m.listing().getServiceInstances(GradientWorker.KEY);
        return this;
    }

    private Behavior<Command> onMemberChanged(MemberChanged m) {
        Member member = m.event().member();
        if (member.uniqueAddress().equals(cluster.selfMember().uniqueAddress())
                && (m.event() instanceof ClusterEvent.MemberDowned || m.event() instanceof ClusterEvent.MemberRemoved r
                && r.previousStatus() == MemberStatus.down())) {
            selfDowned = true; // seen before the node's own status or shutdown reason may say so
        }
        if (!(m.event() instanceof ClusterEvent.MemberRemoved)) {
            members.put(member.address(), member);
            return this;
        }
        members.remove(member.address());
        if (ending) {
            return endIfAlone();
        }
        // a worker whose run has no node left to host its coordinator has nothing more to do
        boolean hostLeft = members.values().stream().anyMatch(x -> x.hasRole(ClusterNodes.COORDINATOR));
        return hostLeft ? this : Behaviors.stopped();
    }

    /**
     * Leaves the cluster gracefully: the other nodes see this one removed, not unreachable (which would be a lost
     * worker to the run, and to the split-brain resolver a reason to down nodes). Once removed, Pekko shuts this
     * node's actor system down.
     */
    private Behavior<Command> leave() {
        cluster.manager().tell(Leave.create(cluster.selfMember().address()));
        getContext().scheduleOnce(END_TIMEOUT, getContext().getSelf(), new EndTimedOut());
        return this;
    }

    private Behavior<Command> onEndTimedOut() {
        getContext().getLog().warn("the cluster did not let this node end within {}: ending anyway", END_TIMEOUT);
        ended.complete(false);
        return Behaviors.stopped();
    }

    private Behavior<Command> onWorkerFailed(ChildFailed f) {
        onFailure.accept(f.getCause());
        return hosting ? this : leave();
    }

    /** Whether the cluster downed this node: its singleton, the run's coordinator, moves to a standby if one is up. */
    private boolean downed() {
        return selfDowned || cluster.selfMember().status() == MemberStatus.down()
                || CoordinatedShutdown.get(getContext().getSystem()).getShutdownReason()
                .filter(r -> r.equals(CoordinatedShutdown.clusterDowningReason())).isPresent();
    }

    /** Stops once no other node is left in the cluster. */
    private Behavior<Command> endIfAlone() {
        Address self = cluster.selfMember().address();
        if (members.keySet().stream().anyMatch(a -> !a.equals(self))) {
            return this;
        }
        ended.complete(false);
        return Behaviors.stopped();
    }
}
