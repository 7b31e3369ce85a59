package dev.spiel4j.service;

import java.util.Map;
import java.util.LinkedHashMap;
import dev.spiel4j.eval.Question;
import dev.spiel4j.eval.MultipleChoiceScorer;
import dev.spiel4j.eval.MultipleChoiceFile;
import dev.spiel4j.data.Batch;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.Encoded;
import dev.spiel4j.data.Example;
import dev.spiel4j.data.ExampleFileReader;
import dev.spiel4j.data.Parsed;
import dev.spiel4j.data.RawRecord;
import dev.spiel4j.data.ReadPosition;
import dev.spiel4j.data.RecordDecoder;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.train.SessionSpec;
import dev.spiel4j.train.TrainingSession;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Scores snapshots of the fine-tuning on held-out data while training goes on: {@link Evaluate} carries a host
 * copy of the method's state (the only cost to the trainer), which this actor resumes in its own
 * {@link TrainingSession} (a second copy of the model, never stepped) and scores: the mean loss per loss token on
 * {@code eval.data}, or on the held-out tail of {@code data.train}, and the accuracy on each
 * {@code eval.multiple-choice} file (MMLU- or ARC-shaped, see {@link MultipleChoiceFile}). Results go to the events
 * topic and to the supervisor. Runs on the blocking-IO dispatcher.
 *
 * <p>The model is built on the first evaluation, the held-out batches are read then too.
 */
final class Evaluator extends AbstractBehavior<Evaluator.Command> {

    public sealed interface Command {
    }

    /** Score the state after {@code step}. */
    public record Evaluate(int step, MethodState snapshot) implements Command {
    }

    /** Answers once every evaluation asked for before it is done. */
    public record Drain(ActorRef<Drained> replyTo) implements Command {
    }

    public record Drained() {
    }

    public static Behavior<Command> create(RunPlan plan, ActorRef<Publisher.Command> publisher,
                                           ActorRef<RunSupervisor.Command> supervisor) {
        return Behaviors.setup(ctx -> new Evaluator(ctx, plan, publisher, supervisor));
    }

    private final RunPlan plan;
    private final Telemetry telemetry;
    private final ActorRef<Publisher.Command> publisher;
    private final ActorRef<RunSupervisor.Command> supervisor;
    private TrainingSession session;
    private List<Batch> heldOut;
    /** eval.multiple-choice files and their questions (at most eval.max-examples each), scored for accuracy. */
    private final Map<Path, List<Question>> multipleChoice = new LinkedHashMap<>();
    private MultipleChoiceScorer choices;
    private String dataset;

    private Evaluator(ActorContext<Command> ctx, RunPlan plan, ActorRef<Publisher.Command> publisher,
                      ActorRef<RunSupervisor.Command> supervisor) {
        super(ctx);
        this.plan = plan;
        this.telemetry = new Telemetry(plan.settings());
        this.publisher = publisher;
        this.supervisor = supervisor;
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Evaluate.class, this::onEvaluate)
                .onMessage(Drain.class, d -> {
                    d.replyTo().tell(new Drained());
                    return this;
                })
                .onSignal(PostStop.class, s -> {
                    if (session != null) {
                        session.close();
                    }
                    return this;
                })
                .build();
    }

    private Behavior<Command> onEvaluate(Evaluate e) {
        if (!ready()) {
            return this;
        }
        long start = System.nanoTime();
        session.resume(e.snapshot());
        double loss = session.evaluate(heldOut);
        long tokens = heldOut.stream().mapToLong(Batch::lossTokens).sum();
        long examples = heldOut.stream().mapToLong(Batch::size).sum();
        double seconds = (System.nanoTime() - start) / 1e9;
        publisher.tell(new Publisher.PublishEvent(telemetry.evaluation(e.step(), dataset, loss, tokens, examples,
                seconds)));
        supervisor.tell(new RunSupervisor.EvalDone(e.step(), loss));
        for (Map.Entry<Path, List<Question>> set : multipleChoice.entrySet()) {
            long began = System.nanoTime();
            double accuracy = choices.score(set.getValue(), session.method()).accuracy();
            publisher.tell(new Publisher.PublishEvent(telemetry.accuracy(e.step(),
                    set.getKey().getFileName().toString(), accuracy, set.getValue().size(),
                    (System.nanoTime() - began) / 1e9)));
        }
        return this;
    }

    /** Builds the model and reads the held-out data on first use; false when there is nothing to score. */
    private boolean ready() {
        if (heldOut == null) {
            heldOut = heldOutBatches();
            if (heldOut.isEmpty()) {
                getContext().getLog().warn("no held-out data to evaluate (eval.data is empty and no records of "
                        + "data.train are held out)");
                return false;
            }
            session = TrainingSession.open(plan.model(), plan.placement(),
                    SessionSpec.unclipped(plan.method(), plan.totalSteps()));
            choices = new MultipleChoiceScorer(session.model(), plan.model().tokenizer(),
                    plan.settings().data().seqLen());
            for (Path file : plan.settings().eval().multipleChoice()) {
                multipleChoice.put(file, MultipleChoiceFile.read(file, plan.settings().eval().maxExamples()));
            }
        }
        return !heldOut.isEmpty();
    }

    private List<Batch> heldOutBatches() {
        Path file;
        ReadPosition from;
        RecordDecoder decoder;
        if (plan.settings().eval().data().isPresent()) {
            file = plan.settings().eval().data().get();
            from = ReadPosition.START;
            decoder = ExampleFileReader.Format.of(file).decoder();
            dataset = file.getFileName().toString();
        } else if (plan.holdout().isPresent()) {
            file = plan.settings().data().train();
            from = plan.holdout().get();
            decoder = plan.decoder();
            dataset = file.getFileName() + " (held out)";
        } else {
            return List.of();
        }
        int max = plan.settings().eval().maxExamples();
        List<TokenizedExample> rows = new ArrayList<>();
        try (ExampleFileReader reader = ExampleFileReader.open(file, from)) {
            while (reader.hasNext() && (max == 0 || rows.size() < max)) {
                RawRecord<ReadPosition> r = reader.next();
                Parsed p = decoder.decode(r.sourceId(), r.bytes());
                if (p instanceof Example example) {
                    for (Encoded enc : plan.encoder().encode(example)) {
                        if (enc instanceof TokenizedExample t && (max == 0 || rows.size() < max)) {
                            rows.add(t);
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read evaluation data " + file + ": " + e.getMessage(), e);
        }
        List<Batch> batches = new ArrayList<>();
        int size = plan.shape().batchSize();
        for (int i = 0; i < rows.size(); i += size) {
            batches.add(Batches.pad(rows.subList(i, Math.min(rows.size(), i + size)), plan.shape().seqLen()));
        }
        return batches;
    }
}
