package dev.spiel4j.service;

import dev.spiel4j.checkpoint.PeftAdapter;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.config.RunSettings;
import dev.spiel4j.data.Batch;
import dev.spiel4j.kafka.CheckpointPart;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.peft.sft.SelectionRequest;
import dev.spiel4j.peft.sft.Reselection;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.train.StepResult;
import dev.spiel4j.train.SummedGradient;
import dev.spiel4j.train.TrainingSession;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.PreRestart;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Trains: owns the run's {@link TrainingSession} (the engine model, the fine-tuning method, the step), and runs on
 * the run's single-thread trainer dispatcher ({@code spiel4j.trainer-dispatcher}), so one thread owns every tensor.
 *
 * <p>On start it loads the newest checkpoint of the run directory, if any (method state, step, data position),
 * and positions the {@link DataStreamer} there with {@link DataStreamer.ResetTo}; a trainer restarted by its
 * supervisor after a failure therefore continues from the last checkpoint. Then it loops by messages: ask for
 * a batch (one per micro-batch), step, report metrics, checkpoint every {@code checkpoint.interval} steps, send a
 * snapshot of the method state to the {@link Evaluator} every {@code eval.interval} steps, ask for the next.
 * At the last step (or on {@link Stop}) it writes a final checkpoint.
 *
 * <p>At a SpIEL reselection the session's update leaves one selection request per delta
 * ({@link TrainingSession#pendingSelection()}); the trainer asks the {@link Selector} actor for each decision
 * ({@code ActorContext.ask}, no thread waits) and carries them out when all have arrived, before it reports the step,
 * checkpoints or asks for the next batch. A {@link Stop} that arrives meanwhile is acted on once they are carried out.
 *
 * <p>With {@code cluster.workers > 0} the trainer is the coordinator of a data-parallel run: it keeps its session as
 * the run's reference replica but computes no gradients. It finds the {@link GradientWorker}s through the
 * receptionist, brings each new one up to its state ({@link GradientWorker.Sync}), gives each step's micro-batches to
 * them ({@link StepExchange}), sums their gradients in micro-batch order, applies the sum and sends it to every worker,
 * so all replicas end each step bit for bit alike; every {@code cluster.checksum-interval} steps it compares their
 * state digests with its own. A worker that leaves or does not answer within {@code cluster.step-timeout} is lost:
 * its micro-batches go to the others and the step completes with the same result.
 */
final class TrainerActor extends AbstractBehavior<TrainerActor.Command> {

    public sealed interface Command {
    }

    /** Write a final checkpoint of the steps done so far, tell the supervisor, and stop. */
    public record Stop() implements Command {
    }

    private record Fed(DataStreamer.Reply reply) implements Command {
    }

    /** The selector's answer (or the ask's failure) for delta {@code index} of the waiting reselection. */
    private record Decided(int index, SelectionDecision decision, Throwable failure) implements Command {
    }

    /** The cluster's current gradient workers. */
    private record WorkersListed(Receptionist.Listing listing) implements Command {
    }

    /** A worker's answer (or the ask's failure) for its micro-batches of step {@code step}, asked at {@code sentNanos}. */
    private record PartsComputed(ActorRef<GradientWorker.Command> worker, int step, long sentNanos,
                                 GradientWorker.Computed reply, Throwable failure) implements Command {
    }

    /** A worker's state digest after step {@code step} (or the ask's failure), to compare with {@code expected}. */
    private record DigestReported(ActorRef<GradientWorker.Command> worker, int step, String expected,
                                  GradientWorker.Digest reply, Throwable failure) implements Command {
    }

    /** Step {@code step} has waited {@code cluster.join-timeout} without any worker. */
    private record NoWorker(int step) implements Command {
    }

    /** The actors a trainer talks to. */
    public record Peers(ActorRef<DataStreamer.Command> streamer, ActorRef<Selector.Command> selector,
                        ActorRef<Evaluator.Command> evaluator, ActorRef<Publisher.Command> publisher,
                        ActorRef<RunSupervisor.Command> supervisor) {
    }

    private static final Duration SELECTOR_TIMEOUT = Duration.ofMinutes(1);

    /** @param failures debug: shared by the trainer's incarnations in a run, so each injected failure happens once */
    public static Behavior<Command> create(RunPlan plan, Peers peers, FailureInjection failures) {
        return Behaviors.setup(ctx -> new TrainerActor(ctx, plan, peers, failures));
    }

    private final RunPlan plan;
    private final RunSettings settings;
    private final Telemetry telemetry;
    private final Peers peers;
    private final FailureInjection failures;
    private final CheckpointStore store;
    private final TrainingSession session;
    private final ActorRef<DataStreamer.Reply> feed;
    private final List<DataStreamer.Served> pending = new ArrayList<>();
    /** The last reselection's decisions, one per delta: filled as the selector answers. */
    private SelectionDecision[] decisions = new SelectionDecision[0];
    private int outstandingDecisions;
    /** The step whose reselection waits for decisions; null when none waits. */
    private StepReport awaitingSelection;
    private boolean dataEnded;
    private boolean stopRequested;
    private StreamPosition position;
    private int lastCheckpoint;
    private int lastEval;
    private long tokensSeen;
    private long examplesSeen;
    /** Cluster mode: the receptionist's workers in a stable order, those brought up to this replica's state. */
    private List<ActorRef<GradientWorker.Command>> workers = List.of();
    private final Set<ActorRef<GradientWorker.Command>> synced = new HashSet<>();
    /** Cluster mode: the step whose gradients are being computed; null between steps. */
    private StepExchange exchange;
    private Cancellable noWorkerTimer;
    /** Cluster mode: the first step waits for {@code cluster.workers} workers (or the join timeout), later ones not. */
    private boolean startedWithWorkers;
    private boolean chaosDone;

    private TrainerActor(ActorContext<Command> ctx, RunPlan plan, Peers peers, FailureInjection failures) {
        super(ctx);
        this.plan = plan;
        this.settings = plan.settings();
        this.telemetry = new Telemetry(settings);
        this.peers = peers;
        this.failures = failures;
        this.store = new CheckpointStore(settings.run().runDir(), settings.checkpoint().keep());
        this.feed = ctx.messageAdapter(DataStreamer.Reply.class, Fed::new);
        Optional<SavedCheckpoint> saved = store.latest();
        saved.ifPresent(c -> requireResumable(c, plan));
        this.session = TrainingSession.open(plan.model(), plan.placement(), plan.trainingSpec());
        position = DataStreamer.start(settings);
        try {
            if (saved.isPresent()) {
                session.resume(saved.get().state());
                position = saved.get().position();
            } else {
                plan.start().ifPresent(session::initialize);
            }
        } catch (RuntimeException e) {
            session.close();
            throw e;
        }
        int step = session.completedSteps();
        session.deferSelections();
        lastCheckpoint = step;
        lastEval = step;
        if (step == 0 && settings.eval().interval() > 0) {
            // the held-out loss before any update: the baseline every later evaluation is read against
            peers.evaluator().tell(new Evaluator.Evaluate(0, session.state()));
        }
        if (settings.cluster().enabled()) {
            ctx.getSystem().receptionist().tell(Receptionist.subscribe(GradientWorker.KEY,
                    ctx.messageAdapter(Receptionist.Listing.class, WorkersListed::new)));
        }
        peers.streamer().tell(new DataStreamer.ResetTo(position));
        peers.supervisor().tell(new RunSupervisor.TrainerStarted(step, saved.map(SavedCheckpoint::id)));
        ctx.getLog().info("trainer of run {} starts at step {} of {} on {}", settings.run().id(), step,
                plan.unbounded() ? "unbounded" : plan.totalSteps(), session.device());
        if (step >= plan.totalSteps()) {
            ctx.getSelf().tell(new Fed(new DataStreamer.EndOfData()));
        } else {
            requestBatch();
        }
    }

    /** Refuses a checkpoint this run cannot continue (other base weights, method or data order) before anything is allocated. */
    static void requireResumable(SavedCheckpoint c, RunPlan plan) {
        if (!c.baseFingerprint().equals(plan.model().fingerprint())) {
            throw new IllegalStateException("checkpoint " + c.deltaFile().getParent() + " was trained on base model "
                    + c.baseFingerprint() + " but model.path " + plan.settings().model().path() + " is "
                    + plan.model().fingerprint() + "; use the original model or another run.id");
        }
        if (!c.baseStorage().equals(plan.settings().model().quantize())) {
            throw new IllegalStateException("checkpoint " + c.deltaFile().getParent() + " was trained on a base with"
                    + " model.quantize = " + c.baseStorage() + " but this run has model.quantize = "
                    + plan.settings().model().quantize() + ": its deltas and optimizer state fit that base only");
        }
        if (!c.state().method().equals(plan.method().name())) {
            throw new IllegalStateException("checkpoint " + c.deltaFile().getParent() + " holds a "
                    + c.state().method() + " run but method.name is " + plan.method().name());
        }
        // a shuffled position indexes an epoch's seeded order, a file-order one the file: neither means the other
        if (c.position() instanceof StreamPosition.InFile f && f.shuffled() != plan.shuffled()) {
            throw new IllegalStateException("checkpoint " + c.deltaFile().getParent() + " read the training file "
                    + (f.shuffled() ? "in shuffled order" : "in file order") + " but this run has data.shuffle = "
                    + plan.shuffled() + ": resume it with data.shuffle = " + f.shuffled());
        }
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Fed.class, this::onFed)
                .onMessage(Decided.class, this::onDecided)
                .onMessage(Stop.class, this::onStop)
                .onMessage(WorkersListed.class, this::onWorkersListed)
                .onMessage(PartsComputed.class, this::onPartsComputed)
                .onMessage(DigestReported.class, this::onDigestReported)
                .onMessage(NoWorker.class, this::onNoWorker)
                .onSignal(PreRestart.class, s -> release())
                .onSignal(PostStop.class, s -> release())
                .build();
    }

    private Behavior<Command> release() {
        session.close();
        return this;
    }

    private void requestBatch() {
        peers.streamer().tell(new DataStreamer.NextBatch(feed));
    }

    private Behavior<Command> onFed(Fed fed) {
        if (fed.reply() instanceof DataStreamer.Served served) {
            pending.add(served);
            if (pending.size() < settings.batch().microBatches()) {
                requestBatch();
                return this;
            }
        } else {
            dataEnded = true;
            if (pending.isEmpty()) {
                return finish();
            }
            // the data ended inside a step: train on what there is
        }
        return step();
    }

    private Behavior<Command> step() {
        int t = session.completedSteps() + 1;
        List<Batch> batches = pending.stream().map(DataStreamer.Served::batch).toList();
        float lr = plan.learningRate().at(t);
        StepResult r;
        try {
            failures.beforeStep(t);
            if (settings.cluster().enabled()) {
                exchange = new StepExchange(t, batches, session.choosesFromFirstMicroBatch());
                return dispatch();
            }
            r = requireFinite(session.step(batches, lr));
        } catch (RuntimeException e) {
            // the supervisor receives this as the trainer's cause of failure: it names the step and its examples
            throw new StepFailed(t, pendingIds(), e);
        }
        return stepped(r, lr);
    }

    private List<String> pendingIds() {
        return pending.stream().flatMap(s -> s.batch().exampleIds().stream()).toList();
    }

    private static StepResult requireFinite(StepResult r) {
        if (!Double.isFinite(r.loss()) || !Double.isFinite(r.gradNorm())) {
            // Never checkpoint a diverged state: failing here restarts the trainer from the last checkpoint.
            throw new IllegalStateException("loss " + r.loss() + " and gradient norm " + r.gradNorm());
        }
        return r;
    }

    /** The pending micro-batches made step {@code r}: on to the report, the reselection, the next step. */
    private Behavior<Command> stepped(StepResult r, float lr) {
        int t = session.completedSteps();
        List<String> ids = pendingIds();
        position = pending.get(pending.size() - 1).resume();
        pending.clear();
        tokensSeen += r.lossTokens();
        examplesSeen += ids.size();
        StepReport report = new StepReport(t, plan.totalSteps(), r.loss(), lr, r.gradNorm(), r.lossTokens(),
                r.seconds(), ids, r.reselected());
        List<SelectionRequest> requests = session.pendingSelection();
        if (requests.isEmpty()) {
            return afterStep(report, null);
        }
        awaitingSelection = report;
        decisions = new SelectionDecision[requests.size()];
        outstandingDecisions = requests.size();
        for (int i = 0; i < requests.size(); i++) {
            int index = i;
            getContext().ask(SelectionDecision.class, peers.selector(), SELECTOR_TIMEOUT,
                    reply -> new Selector.Decide(requests.get(index), reply),
                    (decision, failure) -> new Decided(index, decision, failure));
        }
        return this;
    }

    private Behavior<Command> onWorkersListed(WorkersListed m) {
        Set<ActorRef<GradientWorker.Command>> now = m.listing().getServiceInstances(GradientWorker.KEY);
        for (ActorRef<GradientWorker.Command> w : List.copyOf(synced)) {
            if (!now.contains(w)) {
                lose(w, "left the cluster");
            }
        }
        workers = now.stream().sorted(Comparator.comparing(w -> w.path().toString())).toList();
        getContext().getLog().info("{} gradient worker(s): {}", workers.size(), workers);
        return exchange != null ? dispatch() : this;
    }

    /**
     * Brings new workers up to this replica's state and gives the step's unassigned micro-batches to the workers that
     * are. The first step waits up to {@code cluster.join-timeout} for {@code cluster.workers} of them, a later one
     * only when none is left.
     */
    private Behavior<Command> dispatch() {
        for (ActorRef<GradientWorker.Command> w : workers) {
            if (synced.add(w)) {
                // this replica is after the last step: the worker computes the step in flight from there
                exchange.syncing();
                w.tell(new GradientWorker.Sync(settings.rendered(), plan.model().fingerprint(), plan.totalSteps(),
                        session.state()));
            }
        }
        if (workers.isEmpty() || !startedWithWorkers && workers.size() < settings.cluster().workers()) {
            if (noWorkerTimer == null) {
                getContext().getLog().info("step {} waits for gradient workers ({} of {} there)", exchange.step(),
                        workers.size(), settings.cluster().workers());
                noWorkerTimer = getContext().scheduleOnce(settings.cluster().joinTimeout(), getContext().getSelf(),
                        new NoWorker(exchange.step()));
            }
            return this;
        }
        cancelNoWorkerTimer();
        startedWithWorkers = true;
        int t = exchange.step();
        int last = pending.size() - 1;
        exchange.assign(workers).forEach((worker, batches) -> {
            boolean kill = !chaosDone && settings.cluster().killWorkerAtStep() == t
                    && batches.get(batches.size() - 1).index() == last;
            chaosDone |= kill;
            long sent = System.nanoTime();
            getContext().ask(GradientWorker.Computed.class, worker, settings.cluster().stepTimeout(),
                    replyTo -> new GradientWorker.Compute(t, exchange.stepTokens(), batches, exchange.choices(), kill,
                            replyTo),
                    (reply, failure) -> new PartsComputed(worker, t, sent, reply, failure));
        });
        return this;
    }

    private Behavior<Command> onPartsComputed(PartsComputed m) {
        if (exchange == null || m.step() != exchange.step()) {
            return this; // a reassigned part's late copy: the step is done
        }
        if (m.failure() != null) {
            lose(m.worker(), "no answer within cluster.step-timeout (" + m.failure() + ")");
            return dispatch();
        }
        if (!m.reply().error().isEmpty()) {
            throw new StepFailed(m.step(), pendingIds(), new IllegalStateException("worker " + m.worker().path()
                    + " could not compute its micro-batches: " + m.reply().error()));
        }
        exchange.accept(m.reply().parts(), (System.nanoTime() - m.sentNanos()) / 1e9 - m.reply().computeSeconds());
        if (!exchange.complete()) {
            return dispatch(); // after micro-batch 0 of a step whose others need its choices: those others
        }
        int t = exchange.step();
        float lr = plan.learningRate().at(t);
        StepResult r;
        SummedGradient sum;
        try {
            sum = SummedGradient.of(exchange.parts());
            StepResult applied = requireFinite(session.applyStep(sum, lr));
            // the step took from handing out its micro-batches to here, not just the update
            r = new StepResult(applied.loss(), applied.lossTokens(), applied.gradNorm(), exchange.seconds(),
                    applied.reselected());
        } catch (RuntimeException e) {
            throw new StepFailed(t, pendingIds(), e);
        }
        List<ActorRef<GradientWorker.Command>> replicas = replicas();
        replicas.forEach(w -> w.tell(new GradientWorker.Apply(t, lr, sum)));
        peers.supervisor().tell(new RunSupervisor.ExchangeDone(replicas.size(),
                exchange.bytesIn() + 4 * sum.floats() * replicas.size(), exchange.exchangeSeconds()));
        exchange = null;
        return stepped(r, lr);
    }

    /**
     * The workers brought up to this replica's state and sent every step since: a worker listed while a reselection
     * waited for its decisions is synced only at the next step, after them.
     */
    private List<ActorRef<GradientWorker.Command>> replicas() {
        return workers.stream().filter(synced::contains).toList();
    }

    /** {@code worker} no longer counts: it gets nothing more until the receptionist lists it again (then a sync). */
    private void lose(ActorRef<GradientWorker.Command> worker, String why) {
        if (!synced.remove(worker)) {
            return;
        }
        workers = workers.stream().filter(w -> !w.equals(worker)).toList();
        getContext().getLog().warn("gradient worker {} lost: {}", worker.path(), why);
        peers.supervisor().tell(new RunSupervisor.WorkerLost(worker.path().toString(), why, workers.size()));
        if (exchange != null) {
            exchange.release(worker);
        }
    }

    private Behavior<Command> onNoWorker(NoWorker m) {
        noWorkerTimer = null;
        if (exchange == null || exchange.step() != m.step()) {
            return this;
        }
        if (workers.isEmpty()) {
            throw new StepFailed(m.step(), pendingIds(), new IllegalStateException("no gradient worker joined within"
                    + " cluster.join-timeout = " + settings.cluster().joinTimeout()));
        }
        startedWithWorkers = true; // go on with the workers that came
        return dispatch();
    }

    private void cancelNoWorkerTimer() {
        if (noWorkerTimer != null) {
            noWorkerTimer.cancel();
            noWorkerTimer = null;
        }
    }

    /** Asks every worker for its state digest after step {@code t}, to compare with this replica's. */
    private void compareReplicas(int t) {
        String expected = session.state().digest();
        for (ActorRef<GradientWorker.Command> w : replicas()) {
            getContext().ask(GradientWorker.Digest.class, w, settings.cluster().stepTimeout(),
                    replyTo -> new GradientWorker.ReportDigest(t, replyTo),
                    (reply, failure) -> new DigestReported(w, t, expected, reply, failure));
        }
    }

    private Behavior<Command> onDigestReported(DigestReported m) {
        if (m.failure() != null || m.reply().step() != m.step()) {
            return this; // a lost or re-synced worker: the listing and the next sync deal with it
        }
        if (!m.reply().digest().equals(m.expected())) {
            throw new IllegalStateException("the replica of gradient worker " + m.worker().path() + " differs from the"
                    + " coordinator's after step " + m.step() + " (state digest " + m.reply().digest() + ", expected "
                    + m.expected() + "): data-parallel training lost bit-identity");
        }
        return this;
    }

    private Behavior<Command> onDecided(Decided m) {
        StepReport report = awaitingSelection;
        if (m.failure() != null) {
            throw new StepFailed(report.step(), report.exampleIds(), new IllegalStateException(
                    "the selector did not decide the reselection: " + m.failure(), m.failure()));
        }
        decisions[m.index()] = m.decision();
        if (--outstandingDecisions > 0) {
            return this;
        }
        Reselection done = session.applySelection(List.of(decisions));
        replicas().forEach(w -> w.tell(new GradientWorker.ApplySelection(report.step(), List.of(decisions))));
        awaitingSelection = null;
        return afterStep(report, done);
    }

    /**
     * Reports step {@code report.step()} and its {@code reselection} (carried out; null when the step had none),
     * checkpoints, evaluates, goes on.
     */
    private Behavior<Command> afterStep(StepReport report, Reselection reselection) {
        int t = report.step();
        peers.supervisor().tell(new RunSupervisor.StepDone(report));
        peers.publisher().tell(new Publisher.PublishMetrics(telemetry.metrics(report,
                plan.unbounded() ? 0 : plan.totalSteps(), tokensSeen, examplesSeen)));
        if (reselection != null) {
            peers.publisher().tell(new Publisher.PublishEvent(telemetry.selection(reselection)));
        }
        if (settings.checkpoint().interval() > 0 && t % settings.checkpoint().interval() == 0) {
            checkpoint();
        }
        if (settings.eval().interval() > 0 && t % settings.eval().interval() == 0) {
            evaluate();
        }
        if (settings.cluster().enabled() && t % settings.cluster().checksumInterval() == 0) {
            compareReplicas(t);
        }
        if (stopRequested) {
            return stop();
        }
        if (dataEnded || session.completedSteps() >= plan.totalSteps()) {
            return finish();
        }
        requestBatch();
        return this;
    }

    private Behavior<Command> finish() {
        checkpoint();
        if (settings.eval().interval() > 0) {
            evaluate();
        }
        peers.supervisor().tell(new RunSupervisor.TrainerFinished(session.completedSteps()));
        return Behaviors.stopped();
    }

    private Behavior<Command> onStop(Stop stop) {
        if (awaitingSelection != null) {
            stopRequested = true; // the state can be saved once the reselection is carried out
            return this;
        }
        return stop();
    }

    private Behavior<Command> stop() {
        checkpoint();
        // Told directly (not as an ask reply) so that it reaches the supervisor before the Terminated signal.
        peers.supervisor().tell(new RunSupervisor.TrainerStopped(session.completedSteps()));
        return Behaviors.stopped();
    }

    private void evaluate() {
        int t = session.completedSteps();
        if (t > lastEval) {
            lastEval = t;
            // The snapshot is a host copy: the evaluator scores it while training goes on.
            peers.evaluator().tell(new Evaluator.Evaluate(t, session.state()));
        }
    }

    /** Writes the checkpoint of the current step, unless the last one already is of this step. */
    private void checkpoint() {
        int t = session.completedSteps();
        if (t == 0 || t == lastCheckpoint) {
            return;
        }
        Map<String, String> hp = new LinkedHashMap<>();
        hp.put("lr", Double.toString(settings.optimizer().lr()));
        hp.put("weight_decay", Double.toString(settings.optimizer().weightDecay()));
        hp.put("steps", plan.unbounded() ? "unbounded" : Integer.toString(plan.totalSteps()));
        hp.put("seed", Long.toString(settings.run().seed()));
        hp.put("trainable_parameters", Long.toString(session.method().trainableParameters()));
        SparseFineTuning deltas = new SparseFineTuning(plan.model().fingerprint(), session.method().name(), hp,
                session.method().exportDeltas());
        // a LoRA or (IA)3 run's checkpoint also holds its adapter in PEFT's layout, for --sft and for Python
        Optional<PeftAdapter> adapter = session.peftAdapter(plan.model().fingerprint());
        SavedCheckpoint c = store.write(settings.run().id(), settings.run().seed(), deltas, settings.model().quantize(),
                session.state(), position, dir -> adapter.ifPresent(a -> a.write(plan.model().config(),
                        settings.model().path().toAbsolutePath().normalize().toString(), dir)));
        lastCheckpoint = t;
        CheckpointManifest header = telemetry.checkpointManifest(c, position, session.method().name());
        peers.publisher().tell(new Publisher.PublishCheckpoint(header, List.of(
                new CheckpointPart(CheckpointStore.DELTA_FILE, c.deltaFile()),
                new CheckpointPart(CheckpointStore.STATE_FILE, c.stateFile()))));
        long bytes = c.deltaFile().toFile().length() + c.stateFile().toFile().length();
        peers.publisher().tell(new Publisher.PublishEvent(telemetry.checkpointWritten(c, bytes)));
        peers.supervisor().tell(new RunSupervisor.CheckpointDone(c));
    }

}
