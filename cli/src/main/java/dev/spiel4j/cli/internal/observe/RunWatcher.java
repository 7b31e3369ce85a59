package dev.spiel4j.cli.internal.observe;

import dev.spiel4j.kafka.Topics;
import dev.spiel4j.proto.v1.CheckpointWritten;
import dev.spiel4j.proto.v1.EvalResult;
import dev.spiel4j.proto.v1.KafkaOutage;
import dev.spiel4j.proto.v1.WorkerLost;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.ModuleSelection;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import dev.spiel4j.proto.v1.SelectionEvent;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InterruptException;

import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Follows runs live on the metrics and events topics (what {@code spiel4j watch} does) and prints one line per step
 * (step, loss, learning rate, gradient norm, tokens/s, ETA) and one per event. Watching one run ends when the run
 * reports that it completed, stopped or failed (after printing what it published before that) or at the timeout;
 * watching every run ends at the timeout. It reads without a consumer group, so it commits nothing and disturbs no
 * one. Delivery is at least once, so a step may be printed twice; after a trainer restart the replayed steps are
 * printed again, as they are trained again.
 */
public final class RunWatcher {
    private static final Set<RunStatus.State> FINAL = Set.of(RunStatus.State.COMPLETED, RunStatus.State.STOPPED,
            RunStatus.State.FAILED);
    private static final Duration POLL = Duration.ofMillis(200);

    /** Why watching ended. */
    public enum End {
        /** The watched run reported COMPLETED, STOPPED or FAILED. */
        FINISHED,
        TIMED_OUT,
        INTERRUPTED
    }

    /**
     * @param finalState the run's final state when {@code end} is FINISHED
     * @param steps      metrics lines printed
     * @param events     event lines printed
     */
    public record Outcome(End end, Optional<RunStatus.State> finalState, long steps, long events) {
    }

    private final String bootstrapServers;
    private final Topics topics;
    private final PrintStream out;

    public RunWatcher(String bootstrapServers, Topics topics, PrintStream out) {
        this.bootstrapServers = Objects.requireNonNull(bootstrapServers, "bootstrapServers");
        this.topics = Objects.requireNonNull(topics, "topics");
        this.out = Objects.requireNonNull(out, "out");
    }

    /**
     * Prints the run's metrics and events as they arrive.
     *
     * @param runId         the run to follow, or null for every run (lines then start with the run id)
     * @param fromBeginning print what was already published first; otherwise only what comes from now on
     * @param timeout       the longest time to watch
     */
    public Outcome watch(String runId, boolean fromBeginning, Duration timeout) {
        long deadline = deadline(timeout);
        long steps = 0;
        long events = 0;
        Map<String, EtaEstimator> etas = new HashMap<>();
        try (TelemetryConsumer consumer = new TelemetryConsumer(bootstrapServers, topics, "spiel4j-watch")) {
            try {
                consumer.assign(fromBeginning, deadline);
            } catch (IOException e) {
                out.println(e.getMessage());
                return new Outcome(End.TIMED_OUT, Optional.empty(), 0, 0);
            }
            RunStatus.State finalState = null;
            Map<TopicPartition, Long> drainTo = null;
            while (System.nanoTime() < deadline) {
                for (TelemetryConsumer.Record r : consumer.poll(POLL)) {
                    if (r instanceof TelemetryConsumer.Unreadable u && matches(runId, u.key())) {
                        out.println(prefix(runId, u.key()) + "skipped " + u.where() + ": " + u.problem());
                    } else if (r instanceof TelemetryConsumer.StepRecord s && matches(runId, s.metrics().getRunId())) {
                        Metrics m = s.metrics();
                        Optional<Duration> eta = etas.computeIfAbsent(m.getRunId(), k -> new EtaEstimator()).eta(m);
                        out.println(prefix(runId, m.getRunId()) + stepLine(m, eta));
                        steps++;
                    } else if (r instanceof TelemetryConsumer.EventRecord e && matches(runId, e.event().getRunId())) {
                        out.println(prefix(runId, e.event().getRunId()) + eventLine(e.event()));
                        events++;
                        boolean last = e.event().hasStatus() && FINAL.contains(e.event().getStatus().getState());
                        if (runId != null && last && finalState == null) {
                            finalState = e.event().getStatus().getState();
                            // What the run published before its final status may sit in the other topic.
                            drainTo = consumer.endOffsets();
                        }
                    }
                }
                if (drainTo != null && consumer.reached(drainTo)) {
                    return new Outcome(End.FINISHED, Optional.of(finalState), steps, events);
                }
            }
            return new Outcome(finalState != null ? End.FINISHED : End.TIMED_OUT, Optional.ofNullable(finalState),
                    steps, events);
        } catch (InterruptException e) {
            Thread.currentThread().interrupt();
            return new Outcome(End.INTERRUPTED, Optional.empty(), steps, events);
        }
    }

    private static boolean matches(String wanted, String runId) {
        return wanted == null || wanted.equals(runId);
    }

    private static String prefix(String wanted, String runId) {
        return wanted == null ? "[" + runId + "] " : "";
    }

    /** now + timeout without overflowing for "forever". */
    private static long deadline(Duration timeout) {
        long now = System.nanoTime();
        long nanos = timeout.compareTo(Duration.ofDays(365 * 100)) > 0 ? Long.MAX_VALUE / 2 : timeout.toNanos();
        return now + nanos;
    }

    /** e.g. {@code step 12/300  loss 2.3100  lr 1.00e-04  grad 0.812  5120 tok/s  ETA 0:05:12}. */
    static String stepLine(Metrics m, Optional<Duration> eta) {
        StringBuilder line = new StringBuilder("step ").append(m.getStep());
        if (m.getTotalSteps() > 0) {
            line.append('/').append(m.getTotalSteps());
        }
        line.append(String.format(Locale.ROOT, "  loss %.4f  lr %.2e  grad %.3f  %.0f tok/s", m.getLoss(),
                m.getLearningRate(), m.getGradNorm(), m.getTokensPerSecond()));
        if (m.hasEvalLoss()) {
            line.append(String.format(Locale.ROOT, "  eval_loss %.4f", m.getEvalLoss()));
        }
        if (m.getTotalSteps() > 0) {
            line.append("  ETA ").append(eta.map(RunWatcher::clock).orElse("?"));
        }
        return line.toString();
    }

    static String eventLine(RunEvent e) {
        return switch (e.getKindCase()) {
            case STATUS -> {
                RunStatus s = e.getStatus();
                yield s.getState().name() + " at step " + s.getStep()
                        + (s.getMessage().isEmpty() ? "" : ": " + s.getMessage());
            }
            case SELECTION -> {
                SelectionEvent s = e.getSelection();
                long dropped = s.getModulesList().stream().mapToLong(ModuleSelection::getDropped).sum();
                long grown = s.getModulesList().stream().mapToLong(ModuleSelection::getGrown).sum();
                long active = s.getModulesList().stream().mapToLong(ModuleSelection::getActive).sum();
                yield String.format(Locale.ROOT, "step %d reselection: dropped %d, grown %d, active %d in %d modules "
                        + "(fraction %.3f)", s.getStep(), dropped, grown, active, s.getModulesCount(), s.getFraction());
            }
            case EVAL -> {
                EvalResult r = e.getEval();
                StringBuilder line = new StringBuilder("step " + r.getStep() + " eval " + r.getDataset() + ":");
                if (r.hasAccuracy()) {
                    line.append(String.format(Locale.ROOT, " accuracy %.4f on %d examples", r.getAccuracy(),
                            r.getExamples()));
                }
                if (r.hasLoss()) {
                    line.append(r.hasAccuracy() ? "," : "").append(String.format(Locale.ROOT,
                            " loss %.4f over %d tokens", r.getLoss(), r.getTokens()));
                }
                yield line.append(String.format(Locale.ROOT, " (%.1f s)", r.getSeconds())).toString();
            }
            case CHECKPOINT -> {
                CheckpointWritten c = e.getCheckpoint();
                yield "step " + c.getStep() + " checkpoint " + c.getCheckpointId() + " (" + c.getBytes() + " bytes) "
                        + c.getPath();
            }
            case OUTAGE -> {
                KafkaOutage k = e.getOutage();
                yield k.getOngoing()
                        ? "Kafka unreachable" + (k.hasSince() ? " since " + RunLog.instant(k.getSince()) : "") + ": "
                        + k.getBufferedRecords() + " records buffered (" + k.getCause() + ")"
                        : "Kafka reachable again";
            }
            case WORKER_LOST -> {
                WorkerLost w = e.getWorkerLost();
                yield "gradient worker " + w.getWorker() + " lost (" + w.getReason() + "); " + w.getWorkersLeft()
                        + " left take its micro-batches";
            }
            case KIND_NOT_SET -> "event without a kind";
        };
    }

    /** h:mm:ss. */
    static String clock(Duration d) {
        long s = Math.max(0, d.toSeconds());
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    }

    /**
     * Time left from the pace of the last steps: by the steps' timestamps over a sliding window (which counts the
     * pauses for evaluation and checkpoints), else by the last step's own duration.
     */
    static final class EtaEstimator {
        private static final int WINDOW = 20;
        private final ArrayDeque<long[]> window = new ArrayDeque<>(); // {step, epoch nanos}

        Optional<Duration> eta(Metrics m) {
            long remaining = m.getTotalSteps() - m.getStep();
            if (remaining <= 0) {
                return Optional.of(Duration.ZERO);
            }
            if (m.hasTime()) {
                if (!window.isEmpty() && m.getStep() <= window.peekLast()[0]) {
                    window.clear(); // steps went back: a restart replays them, the old pace does not apply
                }
                Instant t = RunLog.instant(m.getTime());
                window.addLast(new long[]{m.getStep(), t.getEpochSecond() * 1_000_000_000L + t.getNano()});
                if (window.size() > WINDOW) {
                    window.removeFirst();
                }
                if (window.size() >= 2) {
                    long[] first = window.peekFirst();
                    long[] last = window.peekLast();
                    double perStep = (double) (last[1] - first[1]) / (last[0] - first[0]);
                    return Optional.of(Duration.ofNanos((long) (perStep * remaining)));
                }
            }
            if (m.getStepSeconds() > 0) {
                return Optional.of(Duration.ofNanos((long) (m.getStepSeconds() * 1e9 * remaining)));
            }
            return Optional.empty();
        }
    }
}
