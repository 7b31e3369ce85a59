package dev.spiel4j.service;

import com.google.protobuf.ByteString;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.config.RunSettings;
import dev.spiel4j.data.Batch;
import dev.spiel4j.kafka.CheckpointPart;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.peft.sft.SelectionRequest;
import dev.spiel4j.peft.sft.SpielAg;
import dev.spiel4j.peft.sft.SpielMethod;
import dev.spiel4j.proto.v1.AgeBucket;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.CheckpointWritten;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.ModuleSelection;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.SelectionEvent;
import dev.spiel4j.train.StepResult;
import dev.spiel4j.train.TrainingSession;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.PreRestart;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

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
 * <p>At a SpIEL reselection the method calls its selector function inside the update; here that function asks
 * the {@link Selector} actor and <em>blocks</em> until it answers. Blocking is deliberate and harmless: the
 * update cannot go on without the decision, and the thread blocked is the trainer's own dispatcher thread, which
 * nothing else uses.
 */
public final class TrainerActor extends AbstractBehavior<TrainerActor.Command> {

    public sealed interface Command {
    }

    /** Write a final checkpoint of the steps done so far, tell the supervisor, and stop. */
    public record Stop() implements Command {
    }

    private record Fed(DataStreamer.Reply reply) implements Command {
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
    private final Peers peers;
    private final FailureInjection failures;
    private final CheckpointStore store;
    private final TrainingSession session;
    private final ActorRef<DataStreamer.Reply> feed;
    private final List<DataStreamer.Served> pending = new ArrayList<>();
    private final List<SelectionDecision> decisions = new ArrayList<>();
    private StreamPosition position;
    private int lastCheckpoint;
    private int lastEval;
    private long tokensSeen;
    private long examplesSeen;

    private TrainerActor(ActorContext<Command> ctx, RunPlan plan, Peers peers, FailureInjection failures) {
        super(ctx);
        this.plan = plan;
        this.settings = plan.settings();
        this.peers = peers;
        this.failures = failures;
        this.store = new CheckpointStore(settings.run().runDir(), settings.checkpoint().keep());
        this.feed = ctx.messageAdapter(DataStreamer.Reply.class, Fed::new);
        Optional<SavedCheckpoint> saved = store.latest();
        saved.ifPresent(c -> requireBase(c, plan));
        this.session = TrainingSession.open(plan.model(), plan.placement(), plan.trainingSpec());
        position = DataStreamer.start(settings);
        try {
            if (saved.isPresent()) {
                session.resume(saved.get().state());
                position = saved.get().position();
            }
        } catch (RuntimeException e) {
            session.close();
            throw e;
        }
        int step = session.completedSteps();
        if (session.method() instanceof SpielMethod spiel) {
            spiel.setSelector(this::askSelector);
        }
        lastCheckpoint = step;
        lastEval = step;
        if (step == 0 && settings.eval().interval() > 0) {
            // the held-out loss before any update: the baseline every later evaluation is read against
            peers.evaluator().tell(new Evaluator.Evaluate(0, session.state()));
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

    /** Refuses a checkpoint trained on other base weights before anything is allocated. */
    static void requireBase(SavedCheckpoint c, RunPlan plan) {
        if (!c.baseFingerprint().equals(plan.model().fingerprint())) {
            throw new IllegalStateException("checkpoint " + c.deltaFile().getParent() + " was trained on base model "
                    + c.baseFingerprint() + " but model.path " + plan.settings().model().path() + " is "
                    + plan.model().fingerprint() + "; use the original model or another run.id");
        }
        if (!c.state().method().equals(plan.spec().method().cliName())) {
            throw new IllegalStateException("checkpoint " + c.deltaFile().getParent() + " holds a "
                    + c.state().method() + " run but method.name is " + plan.spec().method().cliName());
        }
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Fed.class, this::onFed)
                .onMessage(Stop.class, this::onStop)
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
            step();
        } else if (!pending.isEmpty()) {
            step(); // the data ended inside a step: train on what there is
        }
        if (fed.reply() instanceof DataStreamer.EndOfData || session.completedSteps() >= plan.totalSteps()) {
            return finish();
        }
        requestBatch();
        return this;
    }

    private void step() {
        int t = session.completedSteps() + 1;
        List<Batch> batches = pending.stream().map(DataStreamer.Served::batch).toList();
        List<String> ids = batches.stream().flatMap(b -> b.exampleIds().stream()).toList();
        float lr = plan.learningRate().at(t);
        decisions.clear();
        StepResult r;
        try {
            failures.beforeStep(t);
            r = session.step(batches, lr);
            if (!Double.isFinite(r.loss()) || !Double.isFinite(r.gradNorm())) {
                // Never checkpoint a diverged state: failing here restarts the trainer from the last checkpoint.
                throw new IllegalStateException("loss " + r.loss() + " and gradient norm " + r.gradNorm());
            }
        } catch (RuntimeException e) {
            // the supervisor receives this as the trainer's cause of failure: it names the step and its examples
            throw new StepFailed(t, ids, e);
        }
        position = pending.get(pending.size() - 1).resume();
        pending.clear();
        tokensSeen += r.lossTokens();
        examplesSeen += ids.size();
        StepReport report = new StepReport(t, plan.totalSteps(), r.loss(), lr, r.gradNorm(), r.lossTokens(),
                r.seconds(), ids, r.reselected());
        peers.supervisor().tell(new RunSupervisor.StepDone(report));
        peers.publisher().tell(new Publisher.PublishMetrics(metrics(report)));
        if (r.reselected()) {
            peers.publisher().tell(new Publisher.PublishEvent(event().setSelection(selection(t)).build()));
        }
        if (settings.checkpoint().interval() > 0 && t % settings.checkpoint().interval() == 0) {
            checkpoint();
        }
        if (settings.eval().interval() > 0 && t % settings.eval().interval() == 0) {
            evaluate();
        }
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
        SavedCheckpoint c = store.write(settings.run().id(), settings.run().seed(), deltas, session.state(), position);
        lastCheckpoint = t;
        CheckpointManifest header = CheckpointManifest.newBuilder()
                .setRunId(settings.run().id())
                .setCheckpointId(c.id())
                .setStep(t)
                .setDataPosition(position.toProto(settings.data().train().toString()))
                .setRngState(ByteString.copyFrom(ByteBuffer.allocate(8).putLong(settings.run().seed()).array()))
                .setBaseFingerprint(c.baseFingerprint())
                .setMethod(session.method().name())
                .setCreatedAt(DataStreamer.now())
                .build();
        peers.publisher().tell(new Publisher.PublishCheckpoint(header, List.of(
                new CheckpointPart(CheckpointStore.DELTA_FILE, c.deltaFile()),
                new CheckpointPart(CheckpointStore.STATE_FILE, c.stateFile()))));
        long bytes = c.deltaFile().toFile().length() + c.stateFile().toFile().length();
        peers.publisher().tell(new Publisher.PublishEvent(event().setCheckpoint(CheckpointWritten.newBuilder()
                .setCheckpointId(c.id()).setStep(t).setPath(c.deltaFile().getParent().toString())
                .setBytes(bytes)).build()));
        peers.supervisor().tell(new RunSupervisor.CheckpointDone(c));
    }

    private SelectionDecision askSelector(SelectionRequest request) {
        try {
            SelectionDecision d = AskPattern.<Selector.Command, SelectionDecision>ask(peers.selector(),
                            reply -> new Selector.Decide(request, reply), SELECTOR_TIMEOUT,
                            getContext().getSystem().scheduler())
                    .toCompletableFuture().get(SELECTOR_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            decisions.add(d);
            return d;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the selector", e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("the selector did not decide the reselection: " + e, e);
        }
    }

    private RunEvent.Builder event() {
        return RunEvent.newBuilder().setRunId(settings.run().id()).setTime(DataStreamer.now());
    }

    private Metrics metrics(StepReport s) {
        return Metrics.newBuilder()
                .setRunId(settings.run().id())
                .setStep(s.step())
                .setTotalSteps(plan.unbounded() ? 0 : plan.totalSteps())
                .setLoss(s.loss())
                .setLearningRate(s.learningRate())
                .setTokensPerSecond(s.tokensPerSecond())
                .setGradNorm(s.gradNorm())
                .setStepSeconds(s.seconds())
                .setTokensSeen(tokensSeen)
                .setExamplesSeen(examplesSeen)
                .setTime(DataStreamer.now())
                .build();
    }

    /** What the reselection after step {@code t} did: per matrix the slots replaced, and the slot ages. */
    private SelectionEvent selection(int t) {
        SpielMethod spiel = (SpielMethod) session.method();
        SelectionEvent.Builder e = SelectionEvent.newBuilder().setRunId(settings.run().id()).setStep(t)
                .setFraction(spiel.schedule().fraction(t));
        List<int[]> ages = new ArrayList<>();
        for (int i = 0; i < spiel.deltas().size(); i++) {
            int changed = i < decisions.size() ? decisions.get(i).size() : 0;
            e.addModules(ModuleSelection.newBuilder().setModule(spiel.deltas().get(i).module())
                    .setDropped(changed).setGrown(changed).setActive(spiel.deltas().get(i).size()));
            if (spiel instanceof SpielAg ag) {
                ages.add(ag.optimizer(i).ages());
            }
        }
        e.addAllAgeHistogram(ageHistogram(ages));
        return e.build();
    }

    /** Buckets [0,1), [1,2), [2,4), [4,8)...: the paper's Figure 2 on a log scale; empty ones inside the range kept. */
    static List<AgeBucket> ageHistogram(List<int[]> ages) {
        long[] counts = new long[32];
        for (int[] a : ages) {
            for (int age : a) {
                counts[age <= 0 ? 0 : 32 - Integer.numberOfLeadingZeros(age)]++;
            }
        }
        int first = 0;
        int last = counts.length - 1;
        while (first < last && counts[first] == 0) {
            first++;
        }
        while (last > first && counts[last] == 0) {
            last--;
        }
        // contiguous from the first to the last non-empty bucket: readers take the buckets as one axis of edges
        List<AgeBucket> out = new ArrayList<>();
        for (int b = first; b <= last; b++) {
            int min = b == 0 ? 0 : 1 << (b - 1);
            int max = b == 0 ? 1 : (int) Math.min(Integer.MAX_VALUE, 1L << b);
            out.add(AgeBucket.newBuilder().setMinAge(min).setMaxAge(max).setCount(counts[b]).build());
        }
        return out;
    }
}
