package dev.spiel4j.service;

import dev.spiel4j.config.RunSettings;
import dev.spiel4j.data.Batch;
import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.train.MicroBatchGradient;
import dev.spiel4j.train.SummedGradient;
import dev.spiel4j.train.TrainingSession;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A gradient worker of a data-parallel run: holds a replica of the run's {@link TrainingSession} (the frozen base and
 * the same trained values and optimizer state as the coordinator's), computes the gradients of the micro-batches it is
 * given, and applies every step from the sum of all micro-batches' gradients and every reselection from the
 * coordinator's selector's decisions, so its replica stays bit for bit the coordinator's. Registered with the cluster's receptionist under {@link #KEY}; the coordinator (the run's
 * {@link TrainerActor}) finds it there, sends it a {@link Sync} first and then the steps.
 *
 * <p>Runs on the single-thread trainer dispatcher: one thread owns the replica's tensors. A failure stops it (it is
 * not restarted): its replica could be anywhere, and the coordinator treats it as a lost worker.
 */
final class GradientWorker extends AbstractBehavior<GradientWorker.Command> {

    public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "spiel4j-gradient-worker");

    public sealed interface Command extends ClusterMessage {
    }

    /**
     * Become a replica of the run {@code runConfig} ({@link RunSettings#rendered()}) whose base has
     * {@code baseFingerprint}, at the state after step {@code state.step()}.
     */
    public record Sync(String runConfig, String baseFingerprint, int totalSteps, MethodState state)
            implements Command {
    }

    /** A micro-batch and its place in its step. */
    public record IndexedBatch(int index, Batch batch) {
    }

    /**
     * Compute the gradients of {@code microBatches} of step {@code step} (not yet applied here).
     *
     * @param choices   what micro-batch 0 of the step chose, for the others ({@link MicroBatchGradient#choices()})
     * @param chaosKill SIGKILL this worker's JVM on receipt ({@code spiel4j.chaos.kill-worker-at-step})
     */
    public record Compute(int step, long stepTokens, List<IndexedBatch> microBatches, List<long[]> choices,
                          boolean chaosKill, ActorRef<Computed> replyTo) implements Command {
    }

    /**
     * The parts asked for, or why they could not be computed ({@code error} non-empty), and the worker's own time for
     * them (the coordinator's round trip less this is the exchange's).
     */
    public record Computed(int step, List<MicroBatchGradient> parts, String error, double computeSeconds)
            implements ClusterMessage {
    }

    /** Apply step {@code step} at {@code lr} from the sum of all its micro-batches' gradients. */
    public record Apply(int step, float lr, SummedGradient sum) implements Command {
    }

    /** Carry out the selector's decisions of step {@code step}'s reselection, one per matrix in order. */
    public record ApplySelection(int step, List<SelectionDecision> decisions) implements Command {
    }

    /** Reply with the digest of the replica's state after step {@code step}. */
    public record ReportDigest(int step, ActorRef<Digest> replyTo) implements Command {
    }

    /** {@link MethodState#digest()} of a replica after step {@code step}. */
    public record Digest(int step, String digest) implements ClusterMessage {
    }

    /** The run has ended ({@code reason}): stop, so that this node leaves the cluster. */
    public record Leave(String reason) implements Command {
    }

    /** To this worker's node: the worker became a replica of the run {@code runConfig} ({@link Sync}). */
    public record Synced(String runConfig) {
    }

    /**
     * @param device   this worker's device setting (e.g. {@code gpu:1}) in place of the run's; empty: the run's
     * @param onSynced told each time the worker becomes a replica of another run
     */
    public static Behavior<Command> create(Optional<String> device, ActorRef<Synced> onSynced) {
        return Behaviors.setup(ctx -> new GradientWorker(ctx, device, onSynced));
    }

    private final Optional<String> device;
    private final ActorRef<Synced> onSynced;
    private TrainingSession session;
    private String runConfig;

    private GradientWorker(ActorContext<Command> ctx, Optional<String> device, ActorRef<Synced> onSynced) {
        super(ctx);
        this.device = device;
        this.onSynced = onSynced;
        ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Sync.class, this::onSync)
                .onMessage(Compute.class, this::onCompute)
                .onMessage(Apply.class, this::onApply)
                .onMessage(ApplySelection.class, this::onApplySelection)
                .onMessage(ReportDigest.class, this::onReportDigest)
                .onMessage(Leave.class, this::onLeave)
                .onSignal(PostStop.class, s -> release())
                .build();
    }

    private Behavior<Command> onSync(Sync sync) {
        if (session == null || !sync.runConfig().equals(runConfig)) {
            release();
            RunSettings settings = RunSettings.fromRendered(sync.runConfig(), device);
            LoadedModel model = ModelLoader.load(settings.model().path());
            if (!model.fingerprint().equals(sync.baseFingerprint())) {
                throw new IllegalStateException("model.path " + settings.model().path() + " on this worker is base "
                        + model.fingerprint() + " but the run trains base " + sync.baseFingerprint()
                        + ": give every worker the coordinator's base model");
            }
            session = TrainingSession.open(model, RunPlan.placement(settings),
                    RunPlan.trainingSpec(settings, RunPlan.methodConfig(settings), sync.totalSteps()));
            session.deferSelections(); // the coordinator's selector decides, once for every replica
            runConfig = sync.runConfig();
            getContext().getLog().info("replica of run {} ({}) on {}", settings.run().id(), settings.method().name(),
                    session.device());
            onSynced.tell(new Synced(runConfig));
        }
        session.resume(sync.state());
        return this;
    }

    private Behavior<Command> onCompute(Compute m) {
        if (m.chaosKill()) {
            killThisJvm();
        }
        requireAt(m.step(), "compute");
        long start = System.nanoTime();
        List<MicroBatchGradient> parts = new ArrayList<>();
        try {
            for (IndexedBatch b : m.microBatches()) {
                parts.add(session.gradientOf(b.batch(), b.index(), m.stepTokens(), m.choices()));
            }
        } catch (RuntimeException e) {
            // the data or the computation is at fault, not this replica: the coordinator fails the step with this
            m.replyTo().tell(new Computed(m.step(), List.of(), String.valueOf(e), 0));
            return this;
        }
        m.replyTo().tell(new Computed(m.step(), parts, "", (System.nanoTime() - start) / 1e9));
        return this;
    }

    private Behavior<Command> onApply(Apply m) {
        requireAt(m.step(), "apply");
        session.applyStep(m.sum(), m.lr());
        return this;
    }

    private Behavior<Command> onApplySelection(ApplySelection m) {
        if (session == null || session.pendingSelection().isEmpty() || session.completedSteps() != m.step()) {
            throw new IllegalStateException("decisions for the reselection of step " + m.step() + " but the replica"
                    + (session == null ? " was never synced" : " is after step " + session.completedSteps()
                    + " with " + (session.pendingSelection().isEmpty() ? "no" : "a") + " reselection waiting"));
        }
        session.applySelection(m.decisions());
        return this;
    }

    private Behavior<Command> onReportDigest(ReportDigest m) {
        m.replyTo().tell(new Digest(session == null ? -1 : session.completedSteps(),
                session == null ? "" : session.state().digest()));
        return this;
    }

    private Behavior<Command> onLeave(Leave m) {
        getContext().getLog().info("leaving: {}", m.reason());
        return Behaviors.stopped();
    }

    /** Step {@code step} must be the replica's next one; anything else means it missed a message: it leaves. */
    private void requireAt(int step, String action) {
        if (session == null) {
            throw new IllegalStateException("asked to " + action + " step " + step + " before it was synced");
        }
        if (step != session.completedSteps() + 1) {
            throw new IllegalStateException("asked to " + action + " step " + step + " but the replica is after step "
                    + session.completedSteps());
        }
    }

    /** A real SIGKILL of this JVM, as a crashed machine would end it: no shutdown hook, no goodbye to the cluster. */
    private void killThisJvm() {
        getContext().getLog().warn("chaos.kill-worker-at-step: SIGKILL to this worker (pid {})",
                ProcessHandle.current().pid());
        try {
            new ProcessBuilder("kill", "-9", Long.toString(ProcessHandle.current().pid())).inheritIO().start()
                    .waitFor();
            Thread.sleep(60_000); // the signal arrives while this thread waits
        } catch (IOException e) {
            throw new IllegalStateException("chaos.kill-worker-at-step: cannot run kill -9", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private Behavior<Command> release() {
        if (session != null) {
            session.close();
            session = null;
        }
        return this;
    }
}
