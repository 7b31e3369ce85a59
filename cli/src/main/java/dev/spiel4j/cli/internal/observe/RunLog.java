package dev.spiel4j.cli.internal.observe;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.Timestamp;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.proto.v1.AgeBucket;
import dev.spiel4j.proto.v1.CheckpointWritten;
import dev.spiel4j.proto.v1.EvalResult;
import dev.spiel4j.proto.v1.KafkaOutage;
import dev.spiel4j.proto.v1.WorkerLost;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.ModuleSelection;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import dev.spiel4j.proto.v1.SelectionEvent;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.List;

/**
 * Appends a run's metrics and events to its run directory as JSON lines, the files {@link RunHistory} and
 * {@link RunReport} read back. The lines carry the same content as the {@code Metrics} and {@code RunEvent} messages
 * of the metrics and events topics: the service hands each message to Kafka and to this log.
 *
 * <h2>metrics.jsonl</h2>
 * One object per optimizer step:
 * <pre>{"run_id":"r1","step":12,"total_steps":300,"loss":2.31,"lr":1.0E-4,"tokens_per_s":5120.0,"grad_norm":0.81,
 *  "step_s":0.05,"tokens_seen":6144,"examples_seen":96,"time":"2025-01-01T12:00:00Z","eval_loss":2.1}</pre>
 * {@code eval_loss} only on steps that ran an evaluation, {@code time} (ISO-8601 UTC) only when known;
 * {@code total_steps} is 0 for a run without an end (continual mode). Evaluation accuracies are in the
 * {@code eval} events, since an evaluation finishes after the step it was taken at.
 *
 * <h2>events.jsonl</h2>
 * One object per event, every one with {@code "type"}, {@code "run_id"} and optionally {@code "time"}:
 * <pre>
 * {"type":"status","state":"STARTED","step":0,"message":""}      state: STARTED RESUMED TRAINER_RESTARTED
 *                                                                COMPLETED STOPPED FAILED
 * {"type":"selection","step":20,"fraction":0.2,
 *  "modules":[{"module":"model.layers.0.self_attn.q_proj","dropped":7,"grown":7,"active":40}, ...],
 *  "age_histogram":{"bucket_edges":[0,10,20],"counts":[35,5]}}   counts[i] slots with age in
 *                                                                [bucket_edges[i], bucket_edges[i+1])
 * {"type":"eval","step":50,"dataset":"arc_easy_test.jsonl","accuracy":0.25,"examples":200,"tokens":0,
 *  "seconds":3.2}                                                plus "loss" when scored by loss
 * {"type":"checkpoint","step":100,"checkpoint_id":"step-000100","path":"checkpoints/step-000100","bytes":12345}
 * {"type":"outage","ongoing":true,"since":"...","buffered_records":12,"cause":"..."}
 * </pre>
 * Ages are update steps since a slot was last grown, taken after the reselection.
 *
 * <h2>Writing</h2>
 * Each line is written with one append to a file opened in append mode, under a lock, so lines never interleave;
 * with {@code fsync} each line is forced to disk before {@code append} returns. A line cut short by a crash is
 * removed when the log is opened again. After a resume the replayed steps are appended again; readers keep the
 * last line of each step.
 */
final class RunLog implements AutoCloseable {
    public static final String METRICS_FILE = "metrics.jsonl";
    public static final String EVENTS_FILE = "events.jsonl";

    private final FileChannel metrics;
    private final FileChannel events;
    private final boolean fsync;

    private RunLog(FileChannel metrics, FileChannel events, boolean fsync) {
        this.metrics = metrics;
        this.events = events;
        this.fsync = fsync;
    }

    /**
     * Opens (creating when needed) the two files in {@code runDir}, dropping a torn last line.
     *
     * @param fsync force every line to disk before {@code append} returns
     */
    public static RunLog open(Path runDir, boolean fsync) {
        FileChannel m = null;
        try {
            Files.createDirectories(runDir);
            m = openForAppend(runDir.resolve(METRICS_FILE));
            return new RunLog(m, openForAppend(runDir.resolve(EVENTS_FILE)), fsync);
        } catch (IOException e) {
            closeQuietly(m);
            throw new UncheckedIOException("cannot open the run log in " + runDir, e);
        }
    }

    /** Appends one step's metrics to metrics.jsonl. */
    public void append(Metrics step) {
        write(metrics, metricsJson(step), METRICS_FILE);
    }

    /** Appends one event to events.jsonl. */
    public void append(RunEvent event) {
        write(events, eventJson(event), EVENTS_FILE);
    }

    @Override
    public synchronized void close() {
        try (FileChannel m = metrics; FileChannel e = events) {
            if (fsync) {
                m.force(true);
                e.force(true);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close the run log", e);
        }
    }

    private synchronized void write(FileChannel channel, ObjectNode json, String file) {
        try {
            ByteBuffer line = ByteBuffer.wrap((JsonFiles.MAPPER.writeValueAsString(json) + "\n")
                    .getBytes(StandardCharsets.UTF_8));
            while (line.hasRemaining()) {
                channel.write(line);
            }
            if (fsync) {
                channel.force(false);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append to " + file, e);
        }
    }

    /** Opens {@code file} for appending after cutting it back to the end of its last complete line. */
    private static FileChannel openForAppend(Path file) throws IOException {
        try (FileChannel rw = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            long size = rw.size();
            long end = size;
            ByteBuffer one = ByteBuffer.allocate(1);
            while (end > 0) {
                one.clear();
                rw.read(one, end - 1);
                if (one.get(0) == '\n') {
                    break;
                }
                end--;
            }
            if (end < size) {
                rw.truncate(end);
            }
        }
        return FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    private static void closeQuietly(FileChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // already failing with the open error
            }
        }
    }

    // ------------------------------------------------------------------ proto -> JSON (the file format)

    /** The metrics.jsonl line of {@code m}. */
    static ObjectNode metricsJson(Metrics m) {
        ObjectNode o = JsonFiles.MAPPER.createObjectNode();
        o.put("run_id", m.getRunId());
        o.put("step", m.getStep());
        o.put("total_steps", m.getTotalSteps());
        o.put("loss", m.getLoss());
        o.put("lr", m.getLearningRate());
        o.put("tokens_per_s", m.getTokensPerSecond());
        o.put("grad_norm", m.getGradNorm());
        o.put("step_s", m.getStepSeconds());
        o.put("tokens_seen", m.getTokensSeen());
        o.put("examples_seen", m.getExamplesSeen());
        if (m.hasTime()) {
            o.put("time", instant(m.getTime()).toString());
        }
        if (m.hasEvalLoss()) {
            o.put("eval_loss", m.getEvalLoss());
        }
        return o;
    }

    /**
     * The events.jsonl line of {@code e}.
     *
     * @throws IllegalArgumentException for an event without a kind or an age histogram with gaps
     */
    static ObjectNode eventJson(RunEvent e) {
        ObjectNode o = JsonFiles.MAPPER.createObjectNode();
        switch (e.getKindCase()) {
            case STATUS -> {
                RunStatus s = e.getStatus();
                o.put("type", "status").put("state", s.getState().name()).put("step", s.getStep())
                        .put("message", s.getMessage());
            }
            case SELECTION -> {
                SelectionEvent s = e.getSelection();
                o.put("type", "selection").put("step", s.getStep()).put("fraction", s.getFraction());
                ArrayNode modules = o.putArray("modules");
                for (ModuleSelection m : s.getModulesList()) {
                    modules.addObject().put("module", m.getModule()).put("dropped", m.getDropped())
                            .put("grown", m.getGrown()).put("active", m.getActive());
                }
                putHistogram(o.putObject("age_histogram"), s.getAgeHistogramList(), e.getRunId(), s.getStep());
            }
            case EVAL -> {
                EvalResult r = e.getEval();
                o.put("type", "eval").put("step", r.getStep()).put("dataset", r.getDataset());
                if (r.hasLoss()) {
                    o.put("loss", r.getLoss());
                }
                if (r.hasAccuracy()) {
                    o.put("accuracy", r.getAccuracy());
                }
                o.put("examples", r.getExamples()).put("tokens", r.getTokens()).put("seconds", r.getSeconds());
            }
            case CHECKPOINT -> {
                CheckpointWritten c = e.getCheckpoint();
                o.put("type", "checkpoint").put("step", c.getStep()).put("checkpoint_id", c.getCheckpointId())
                        .put("path", c.getPath()).put("bytes", c.getBytes());
            }
            case OUTAGE -> {
                KafkaOutage k = e.getOutage();
                o.put("type", "outage").put("ongoing", k.getOngoing());
                if (k.hasSince()) {
                    o.put("since", instant(k.getSince()).toString());
                }
                o.put("buffered_records", k.getBufferedRecords()).put("cause", k.getCause());
            }
            case WORKER_LOST -> {
                WorkerLost w = e.getWorkerLost();
                o.put("type", "worker_lost").put("worker", w.getWorker()).put("reason", w.getReason())
                        .put("workers_left", w.getWorkersLeft());
            }
            case KIND_NOT_SET -> throw new IllegalArgumentException("event of run '" + e.getRunId()
                    + "' has no kind (status, selection, eval, checkpoint, outage or worker_lost)");
        }
        o.put("run_id", e.getRunId());
        if (e.hasTime()) {
            o.put("time", instant(e.getTime()).toString());
        }
        return o;
    }

    /**
     * Buckets [min, max) in increasing order, written as edges; a gap between two buckets (a writer that leaves out
     * empty ones) becomes a bucket of count 0.
     */
    private static void putHistogram(ObjectNode out, List<AgeBucket> buckets, String runId, long step) {
        ArrayNode edges = out.putArray("bucket_edges");
        ArrayNode counts = out.putArray("counts");
        for (int i = 0; i < buckets.size(); i++) {
            AgeBucket b = buckets.get(i);
            long previousEnd = i == 0 ? b.getMinAge() : buckets.get(i - 1).getMaxAge();
            if (b.getMaxAge() <= b.getMinAge() || b.getMinAge() < previousEnd) {
                throw new IllegalArgumentException("selection event of run '" + runId + "' at step " + step
                        + ": age bucket " + i + " [" + b.getMinAge() + ", " + b.getMaxAge() + ") is empty or "
                        + "overlaps the previous bucket");
            }
            if (i == 0) {
                edges.add(b.getMinAge());
            } else if (b.getMinAge() > previousEnd) {
                edges.add(b.getMinAge());
                counts.add(0);
            }
            edges.add(b.getMaxAge());
            counts.add(b.getCount());
        }
    }

    static Instant instant(Timestamp t) {
        return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
    }
}
