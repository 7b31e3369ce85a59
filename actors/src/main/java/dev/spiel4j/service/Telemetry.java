package dev.spiel4j.service;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import dev.spiel4j.config.RunSettings;
import dev.spiel4j.data.Rejected;
import dev.spiel4j.peft.sft.Reselection;
import dev.spiel4j.proto.v1.AgeBucket;
import dev.spiel4j.proto.v1.CheckpointManifest;
import dev.spiel4j.proto.v1.CheckpointWritten;
import dev.spiel4j.proto.v1.DeadLetter;
import dev.spiel4j.proto.v1.EvalResult;
import dev.spiel4j.proto.v1.FileLocation;
import dev.spiel4j.proto.v1.KafkaOutage;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.ModuleSelection;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import dev.spiel4j.proto.v1.WorkerLost;
import dev.spiel4j.proto.v1.SelectionEvent;
import dev.spiel4j.proto.v1.SourceLocation;
import dev.spiel4j.proto.v1.TopicLocation;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * What a run reports, as the {@code spiel4j.v1} messages the {@link Publisher} writes to Kafka: every mapping from
 * the service's values to a proto lives here, so the actors tell facts and one place decides how they read on the
 * topics. Stamped with the run's id and the time of mapping.
 */
final class Telemetry {
    private final RunSettings settings;

    Telemetry(RunSettings settings) {
        this.settings = settings;
    }

    /** One optimizer step; {@code totalSteps} 0 for a run without an end. */
    Metrics metrics(StepReport s, int totalSteps, long tokensSeen, long examplesSeen) {
        return Metrics.newBuilder()
                .setRunId(runId())
                .setStep(s.step())
                .setTotalSteps(totalSteps)
                .setLoss(s.loss())
                .setLearningRate(s.learningRate())
                .setTokensPerSecond(s.tokensPerSecond())
                .setGradNorm(s.gradNorm())
                .setStepSeconds(s.seconds())
                .setTokensSeen(tokensSeen)
                .setExamplesSeen(examplesSeen)
                .setTime(now())
                .build();
    }

    /** A reselection: per matrix the slots replaced, and the slots' ages (none for SM3). */
    RunEvent selection(Reselection r) {
        SelectionEvent.Builder e = SelectionEvent.newBuilder().setRunId(runId()).setStep(r.step())
                .setFraction(r.fraction());
        List<int[]> ages = new ArrayList<>();
        for (Reselection.MatrixChange m : r.matrices()) {
            e.addModules(ModuleSelection.newBuilder().setModule(m.module()).setDropped(m.replaced())
                    .setGrown(m.replaced()).setActive(m.active()));
            if (m.slotAges() != null) {
                ages.add(m.slotAges());
            }
        }
        e.addAllAgeHistogram(ageHistogram(ages));
        return event().setSelection(e).build();
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

    /** The manifest that heads a checkpoint's records on the checkpoints topic. */
    CheckpointManifest checkpointManifest(SavedCheckpoint c, StreamPosition position, String method) {
        return CheckpointManifest.newBuilder()
                .setRunId(runId())
                .setCheckpointId(c.id())
                .setStep(c.step())
                .setDataPosition(position.toProto(settings.data().train().toString()))
                .setRngState(ByteString.copyFrom(ByteBuffer.allocate(8).putLong(settings.run().seed()).array()))
                .setBaseFingerprint(c.baseFingerprint())
                .setMethod(method)
                .setCreatedAt(now())
                .build();
    }

    RunEvent checkpointWritten(SavedCheckpoint c, long bytes) {
        return event().setCheckpoint(CheckpointWritten.newBuilder().setCheckpointId(c.id()).setStep(c.step())
                .setPath(c.deltaFile().getParent().toString()).setBytes(bytes)).build();
    }

    /** The held-out loss at {@code step}. */
    RunEvent evaluation(int step, String dataset, double loss, long tokens, long examples, double seconds) {
        return event().setEval(EvalResult.newBuilder().setRunId(runId()).setStep(step).setDataset(dataset)
                .setLoss(loss).setTokens(tokens).setExamples(examples).setSeconds(seconds)).build();
    }

    /** A multiple-choice accuracy at {@code step}. */
    RunEvent accuracy(int step, String dataset, double accuracy, long examples, double seconds) {
        return event().setEval(EvalResult.newBuilder().setRunId(runId()).setStep(step).setDataset(dataset)
                .setAccuracy(accuracy).setExamples(examples).setSeconds(seconds)).build();
    }

    RunEvent outage(boolean ongoing, Instant since, int waitingRecords, String cause) {
        return event().setOutage(KafkaOutage.newBuilder().setOngoing(ongoing)
                .setSince(Timestamp.newBuilder().setSeconds(since.getEpochSecond()))
                .setBufferedRecords(waitingRecords).setCause(cause)).build();
    }

    RunEvent workerLost(String worker, String reason, int workersLeft) {
        return event().setWorkerLost(WorkerLost.newBuilder().setWorker(worker).setReason(reason)
                .setWorkersLeft(workersLeft)).build();
    }

    RunEvent status(RunStatus.State state, int step, String message) {
        return event().setStatus(RunStatus.newBuilder().setState(state).setStep(step).setMessage(message)).build();
    }

    /** A record the data pipeline refused, with the category of its reason and where it came from. */
    DeadLetter deadLetter(Rejected r) {
        int colon = r.reason().indexOf(':');
        String category = (colon > 0 ? r.reason().substring(0, colon) : r.reason().split("'")[0]).trim()
                .toLowerCase().replaceAll("[^a-z0-9]+", "_");
        return DeadLetter.newBuilder()
                .setRunId(runId())
                .setSource(location(r.sourcePosition()))
                .setSourceId(r.sourcePosition())
                .setReason(category)
                .setDetail(r.reason())
                .setRaw(ByteString.copyFrom(r.raw(), StandardCharsets.UTF_8))
                .setTime(now())
                .build();
    }

    /** Parses the source ids of {@code dev.spiel4j.data} ({@code file:line}, {@code file#index}, {@code topic-p@offset}). */
    private SourceLocation location(String id) {
        int at = id.lastIndexOf('@');
        int dash = at > 0 ? id.lastIndexOf('-', at) : -1;
        if (settings.data().source() == RunSettings.Source.KAFKA && dash > 0) {
            try {
                return SourceLocation.newBuilder().setTopic(TopicLocation.newBuilder()
                        .setTopic(id.substring(0, dash))
                        .setPartition(Integer.parseInt(id.substring(dash + 1, at)))
                        .setOffset(Long.parseLong(id.substring(at + 1)))).build();
            } catch (NumberFormatException e) {
                // an example's own id, not a topic position: reported as is below
            }
        }
        int sep = Math.max(id.lastIndexOf(':'), id.lastIndexOf('#'));
        FileLocation.Builder file = FileLocation.newBuilder().setPath(id);
        if (sep > 0) {
            try {
                file.setLine(Long.parseLong(id.substring(sep + 1).replaceAll("#.*", ""))).setPath(
                        settings.data().source() == RunSettings.Source.FILE
                                ? settings.data().train().toString() : id.substring(0, sep));
            } catch (NumberFormatException e) {
                file.setPath(id);
            }
        }
        return SourceLocation.newBuilder().setFile(file).build();
    }

    private RunEvent.Builder event() {
        return RunEvent.newBuilder().setRunId(runId()).setTime(now());
    }

    private String runId() {
        return settings.run().id();
    }

    private static Timestamp now() {
        Instant t = Instant.now();
        return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
    }
}
