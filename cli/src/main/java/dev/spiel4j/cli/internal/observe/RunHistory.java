package dev.spiel4j.cli.internal.observe;

import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.cli.internal.observe.RunLogLines.CheckpointLine;
import dev.spiel4j.cli.internal.observe.RunLogLines.EvalLine;
import dev.spiel4j.cli.internal.observe.RunLogLines.EventType;
import dev.spiel4j.cli.internal.observe.RunLogLines.MetricsLine;
import dev.spiel4j.cli.internal.observe.RunLogLines.OutageLine;
import dev.spiel4j.cli.internal.observe.RunLogLines.RunTag;
import dev.spiel4j.cli.internal.observe.RunLogLines.SelectionLine;
import dev.spiel4j.cli.internal.observe.RunLogLines.StatusLine;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.TreeMap;

import dev.spiel4j.kafka.Topics;

import static dev.spiel4j.cli.internal.observe.RunLogLines.bind;

/**
 * What a run reported, read back from its run directory ({@link RunLog}'s files) or from the metrics and events
 * topics. Steps, selections and evaluations are in step order; a step (or a selection, or an evaluation of a data
 * set at a step) reported twice, as after a resume that replays steps, keeps its last report.
 *
 * @param runId       the run's id (empty when nothing named it)
 * @param steps       one per optimizer step
 * @param selections  one per reselection
 * @param evaluations one per evaluated data set and step
 * @param statuses    status changes in the order they were reported
 * @param checkpoints checkpoints written, by id
 * @param outages     how many Kafka outage reports there were (ongoing ones)
 * @param workersLost how many gradient workers of a data-parallel run were lost
 */
public record RunHistory(String runId, List<Step> steps, List<Selection> selections, List<Evaluation> evaluations,
                         List<Status> statuses, List<Checkpoint> checkpoints, int outages, int workersLost) {

    public RunHistory {
        steps = List.copyOf(steps);
        selections = List.copyOf(selections);
        evaluations = List.copyOf(evaluations);
        statuses = List.copyOf(statuses);
        checkpoints = List.copyOf(checkpoints);
    }

    /** One optimizer step's numbers; {@code totalSteps} is 0 for a run without an end. */
    public record Step(long step, long totalSteps, double loss, double lr, double tokensPerSecond, double gradNorm,
                       double stepSeconds, OptionalDouble evalLoss, Optional<Instant> time) {
    }

    /**
     * One reselection: totals over its modules and the slots' age histogram after it ({@code counts[i]} slots with
     * age in {@code [bucketEdges[i], bucketEdges[i + 1])}).
     */
    public record Selection(long step, double fraction, int modules, long dropped, long grown, long active,
                            List<Long> bucketEdges, List<Long> counts) {
        public Selection {
            bucketEdges = List.copyOf(bucketEdges);
            counts = List.copyOf(counts);
            if (!counts.isEmpty() && bucketEdges.size() != counts.size() + 1) {
                throw new IllegalArgumentException("an age histogram of " + counts.size() + " buckets needs "
                        + (counts.size() + 1) + " edges, got " + bucketEdges.size());
            }
        }
    }

    /** One evaluation of one data set: a loss, an accuracy, or both. */
    public record Evaluation(long step, String dataset, OptionalDouble loss, OptionalDouble accuracy, long examples) {
    }

    /** A status change, e.g. {@code STARTED}, {@code COMPLETED}. */
    public record Status(long step, String state, String message) {
    }

    /** A checkpoint the run wrote: its id, where (as the run reported it) and its size. */
    public record Checkpoint(long step, String id, String path, long bytes) {
    }

    /** The last step reported, if any. */
    public Optional<Step> lastStep() {
        return steps.isEmpty() ? Optional.empty() : Optional.of(steps.get(steps.size() - 1));
    }

    /** The last reselection, whose age histogram describes the slots at the end. */
    public Optional<Selection> lastSelection() {
        return selections.isEmpty() ? Optional.empty() : Optional.of(selections.get(selections.size() - 1));
    }

    /** The last status change, e.g. {@code COMPLETED}. */
    public Optional<Status> lastStatus() {
        return statuses.isEmpty() ? Optional.empty() : Optional.of(statuses.get(statuses.size() - 1));
    }

    /**
     * Reads {@code runDir}/metrics.jsonl and (when present) events.jsonl. A last line without its newline is a line
     * being written and is left out.
     *
     * @throws IllegalArgumentException when there is no metrics.jsonl, or for a malformed line (naming file:line)
     */
    public static RunHistory read(Path runDir) {
        Path metrics = runDir.resolve(RunLog.METRICS_FILE);
        if (!Files.isRegularFile(metrics)) {
            throw new IllegalArgumentException(runDir + " is not a run directory: it has no " + RunLog.METRICS_FILE);
        }
        Builder builder = new Builder();
        readLines(metrics, builder::addMetrics);
        Path events = runDir.resolve(RunLog.EVENTS_FILE);
        if (Files.isRegularFile(events)) {
            readLines(events, builder::addEvent);
        }
        return builder.build();
    }

    /**
     * Reads the run's records from the metrics and events topics, from the beginning to their current end.
     *
     * @throws java.io.IOException when a topic does not exist or the end is not reached within {@code timeout}
     */
    public static RunHistory fromKafka(String bootstrapServers, Topics topics, String runId, Duration timeout)
            throws IOException {
        Builder builder = new Builder();
        try (TelemetryConsumer consumer = new TelemetryConsumer(bootstrapServers, topics, "spiel4j-report")) {
            consumer.readToEnd(timeout, "the telemetry of run '" + runId + "'", r -> {
                if (r instanceof TelemetryConsumer.Unreadable u && runId.equals(u.key())) {
                    throw new IOException(u.where() + ": " + u.problem());
                }
                if (r instanceof TelemetryConsumer.StepRecord s && runId.equals(s.metrics().getRunId())) {
                    builder.addMetrics(s.where(), RunLog.metricsJson(s.metrics()));
                } else if (r instanceof TelemetryConsumer.EventRecord e && runId.equals(e.event().getRunId())) {
                    builder.addEvent(e.where(), RunLog.eventJson(e.event()));
                }
            });
        }
        return builder.build();
    }

    private interface LineSink {
        void accept(String where, JsonNode line);
    }

    private static void readLines(Path file, LineSink sink) {
        String name = file.getFileName().toString();
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        try (BufferedReader in = new BufferedReader(new java.io.StringReader(
                text.substring(0, text.lastIndexOf('\n') + 1)))) {
            String line;
            int number = 0;
            while ((line = in.readLine()) != null) {
                number++;
                if (line.isBlank()) {
                    continue;
                }
                String where = name + ":" + number;
                sink.accept(where, JsonFiles.objectLine(where, line));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e); // reading a string
        }
    }

    /** Collects lines (from files or converted messages), checking each; {@code where} names the source. */
    static final class Builder {
        private String runId;
        private final TreeMap<Long, Step> steps = new TreeMap<>();
        private final TreeMap<Long, Selection> selections = new TreeMap<>();
        private final Map<EvalKey, Evaluation> evaluations = new LinkedHashMap<>();
        private final List<Status> statuses = new ArrayList<>();
        private final Map<String, Checkpoint> checkpoints = new LinkedHashMap<>();
        private int outages;
        private int workersLost;

        private record EvalKey(long step, String dataset) {
        }

        void addMetrics(String where, JsonNode line) {
            checkRun(where, line);
            Step step = bind(where, line, MetricsLine.class).toStep();
            steps.put(step.step(), step);
        }

        void addEvent(String where, JsonNode line) {
            checkRun(where, line);
            switch (bind(where, line, EventType.class).type()) {
                case "status" -> statuses.add(bind(where, line, StatusLine.class).toStatus());
                case "selection" -> {
                    Selection selection = bind(where, line, SelectionLine.class).toSelection();
                    selections.put(selection.step(), selection);
                }
                case "eval" -> {
                    Evaluation evaluation = bind(where, line, EvalLine.class).toEvaluation();
                    evaluations.put(new EvalKey(evaluation.step(), evaluation.dataset()), evaluation);
                }
                case "checkpoint" -> {
                    Checkpoint checkpoint = bind(where, line, CheckpointLine.class).toCheckpoint();
                    checkpoints.put(checkpoint.id(), checkpoint);
                }
                case "outage" -> outages += bind(where, line, OutageLine.class).ongoing() ? 1 : 0;
                case "worker_lost" -> workersLost++;
                default -> {
                    // A newer writer's event type: skipped, so that old readers keep working.
                }
            }
        }

        /** Before the rest of the line is bound, so that a line of another run is reported as that. */
        private void checkRun(String where, JsonNode line) {
            String id = bind(where, line, RunTag.class).runId();
            if (runId == null || runId.isEmpty()) {
                runId = id;
            } else if (!id.isEmpty() && !id.equals(runId)) {
                throw new IllegalArgumentException(where + ": run_id '" + id + "' differs from '" + runId
                        + "' of the lines before");
            }
        }

        RunHistory build() {
            List<Evaluation> evals = new ArrayList<>(evaluations.values());
            evals.sort(Comparator.comparingLong(Evaluation::step));
            return new RunHistory(runId == null ? "" : runId, new ArrayList<>(steps.values()),
                    new ArrayList<>(selections.values()), evals, statuses, new ArrayList<>(checkpoints.values()),
                    outages, workersLost);
        }
    }
}
