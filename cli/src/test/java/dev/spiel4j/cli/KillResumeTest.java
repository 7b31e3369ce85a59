package dev.spiel4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.bench.ChildRunner;
import dev.spiel4j.checkpoint.TrainingStateFile;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.service.CheckpointAssertions;
import dev.spiel4j.service.CheckpointStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.IntPredicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The resume promise under the harshest interruption: the real training CLI ({@code Main train}, embedded Kafka
 * broker included) in a child JVM, SIGKILLed 4 times while it trains (twice at a seeded random moment, twice while it
 * writes a checkpoint) and restarted with the same run id each time, must end with checkpoints bit-identical to
 * those of an uninterrupted run: the sparse fine-tuning, the optimizer and selector state, the step and the data
 * position (so no example was lost or trained twice), and every step it reports, replayed ones included, must have
 * the uninterrupted run's loss.
 *
 * <p>The children run with the options the launcher ({@code ./spiel4j}) sets, plus the heap and {@code -XX:}
 * options of this test JVM (none by default): running the tests with, e.g., {@code -XX:+UseEpsilonGC} in
 * {@code spiel4j.test.jvm} runs the children under that collector too.
 */
@Tag("slow")
class KillResumeTest {
    private static final int STEPS = 30;
    private static final int BATCH = 4;
    private static final int CHECKPOINT_INTERVAL = 5;
    private static final int KILLS = 4;
    /** Seeds the kill moments, so a failing sequence of kills can be replayed. */
    private static final long KILL_SEED = 20261203L;
    private static final Duration LINE_TIMEOUT = Duration.ofMinutes(2);
    private static final Duration RUN_TIMEOUT = Duration.ofMinutes(5);
    /** The exit status of a process killed by SIGKILL (128 + 9). */
    private static final int SIGKILLED = 137;
    private static final Pattern STEP_LINE = Pattern.compile("^step (\\d+)/" + STEPS + " {2}loss (\\S+) ");
    private static final String UNINTERRUPTED = "uninterrupted";
    private static final String KILLED = "killed";
    private static final String KILLED_COORDINATOR = "killed-coordinator";
    private static final String FROZEN_COORDINATOR = "frozen-coordinator";

    /** Shared by the tests: the uninterrupted run is their common reference. */
    @TempDir
    static Path dir;
    /** The uninterrupted run's step losses, once it has run ({@link #uninterrupted()}). */
    private static List<StepLoss> reference;
    private final List<Process> children = new ArrayList<>();

    @AfterEach
    void killLeftoverChildren() {
        children.forEach(Process::destroyForcibly);
    }

    @Test
    @Timeout(value = 20, unit = TimeUnit.MINUTES)
    void runKilledBySigkillAndRestartedEndsBitIdenticalToTheUninterruptedRun() throws Exception {
        long t0 = System.nanoTime();
        List<StepLoss> reference = uninterrupted();

        // Odd kills land at a random moment within about a step after a random one 6 to 8 steps into the start (so
        // the checkpoint 5 steps in was written); even kills land while the start writes its first checkpoint, as
        // soon as the checkpoint's temporary directory appears. Each start thus resumes about 5 steps further than
        // the one before it, and no killed start gets near the last step.
        Random random = new Random(KILL_SEED);
        List<TrainProcess> starts = new ArrayList<>();
        for (int kill = 1; kill <= KILLS; kill++) {
            TrainProcess child = resume();
            starts.add(child);
            int resumedAt = child.firstStep - 1;
            String moment;
            if (kill % 2 == 1) {
                int step = resumedAt + CHECKPOINT_INTERVAL + 1 + random.nextInt(3);
                child.awaitStep(s -> s == step);
                long delayNanos = (long) (random.nextDouble() * child.meanStepNanos());
                TimeUnit.NANOSECONDS.sleep(delayNanos);
                moment = String.format("%.0f ms after the line of step %d", delayNanos / 1e6, step);
            } else {
                int step = resumedAt + CHECKPOINT_INTERVAL;
                child.awaitStep(s -> s == step);
                moment = awaitCheckpointWrite(step) ? "while writing checkpoint " + CheckpointStore.idOf(step)
                        : "after the line of step " + step + " (the checkpoint's temporary directory was not seen)";
            }
            assertTrue(child.process.isAlive(), "start " + kill + " ended before its kill:\n" + child.tail());
            double at = seconds(child.startNanos);
            child.process.destroyForcibly();
            assertTrue(child.process.waitFor(30, TimeUnit.SECONDS), "start " + kill + " did not die");
            assertEquals(SIGKILLED, child.process.exitValue(), "start " + kill + " was killed by SIGKILL");
            child.readToEnd();
            System.out.printf("kill %d: SIGKILL %.2f s after the start that resumed at step %d, %s; last step"
                            + " reported %d; newest checkpoint %s; partial checkpoint directories: %s%n", kill, at,
                    resumedAt, moment, child.steps.get(child.steps.size() - 1).step(), newestCheckpoint(KILLED),
                    partialCheckpoints());
        }
        TrainProcess last = resume();
        starts.add(last);
        last.finish();
        assertEquals(List.of(), partialCheckpoints(), "the checkpoint writes the kills interrupted are cleaned up");
        System.out.printf("killed run: %d starts, %.1f s in all%n", starts.size(), seconds(t0));

        // Every step was trained, and every execution of a step (replayed ones included) had the same loss.
        for (TrainProcess s : starts) {
            for (StepLoss done : s.steps) {
                assertEquals(reference.get(done.step() - 1), done, "the start that began at step " + s.firstStep
                        + " against the uninterrupted run");
            }
        }
        assertEquals(IntStream.rangeClosed(1, STEPS).boxed().toList(),
                starts.stream().flatMap(s -> s.steps.stream()).map(StepLoss::step).distinct().sorted().toList());

        assertSameCheckpointsAsUninterrupted(KILLED);
        // The final data position is right after the last trained example: one batch per step, nothing skipped.
        Map<String, String> end = TrainingStateFile.load(checkpoints(UNINTERRUPTED).resolve(CheckpointStore.idOf(STEPS))
                .resolve(CheckpointStore.STATE_FILE)).metadata();
        assertEquals(Integer.toString(STEPS), end.get("step"));
        assertEquals("0", end.get("data.epoch"));
        assertEquals(Integer.toString(STEPS * BATCH), end.get("data.record"));
    }

    /**
     * The same run on two gradient workers (Pekko Cluster, `--workers 2`, standbys): its coordinator, the child that
     * writes the checkpoints, is SIGKILLed mid-run. The run's coordinator, a cluster singleton, moves to a standby
     * worker, which resumes from the last checkpoint with the other worker and its own, ends the run and leaves with
     * it. Every step reported on either node has the uninterrupted single-process run's loss, and every checkpoint is
     * that run's, bit for bit.
     */
    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void coordinatorKilledBySigkillIsTakenOverByAStandbyWorkerBitIdenticalToTheUninterruptedRun() throws Exception {
        List<StepLoss> reference = uninterrupted();
        TrainProcess coordinator = start(KILLED_COORDINATOR, "--workers", "2");
        assertEquals(1, coordinator.awaitStep(s -> true), "a fresh run starts at step 1");
        coordinator.awaitStep(s -> s == CHECKPOINT_INTERVAL + 2);
        List<ProcessHandle> workers = coordinator.process.children().toList();
        int newest;
        try {
            assertEquals(2, workers.size(), "the coordinator's worker JVMs");
            coordinator.process.destroyForcibly();
            assertTrue(coordinator.process.waitFor(30, TimeUnit.SECONDS), "the coordinator did not die");
            assertEquals(SIGKILLED, coordinator.process.exitValue(), "the coordinator was killed by SIGKILL");
            coordinator.readToEnd();
            newest = newestCheckpoint(KILLED_COORDINATOR);
            for (ProcessHandle worker : workers) {
                // the run ends on the standby that took it over, and the workers leave with it
                worker.onExit().get(RUN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            }
        } finally {
            workers.forEach(ProcessHandle::destroyForcibly);
        }

        List<StepLoss> takenOver = stepLines(dir.resolve("runs").resolve(KILLED_COORDINATOR).resolve("workers"));
        assertEquals(IntStream.rangeClosed(newest + 1, STEPS).boxed().toList(),
                takenOver.stream().map(StepLoss::step).toList(),
                "one standby resumed after the newest checkpoint, step " + newest + ", and trained to the end");
        for (StepLoss done : concat(coordinator.steps, takenOver)) {
            assertEquals(reference.get(done.step() - 1), done, "against the uninterrupted run");
        }
        assertSameCheckpointsAsUninterrupted(KILLED_COORDINATOR);
    }

    /**
     * The same run on two gradient workers, its coordinator cut off instead of killed: frozen (SIGSTOP) until the
     * workers have downed it, then let go on (SIGCONT), as after a long pause or a partition. The frozen coordinator
     * still holds the run's broker; the standby that takes the run over waits for it, and the old coordinator, on
     * finding itself downed, stops the run (a last checkpoint, when its singleton is stopped gracefully rather than
     * with the node), lets the broker go and leaves its workers be. The standby resumes from the newest checkpoint,
     * trains every step from there, ends the run bit-identical to the uninterrupted one, and the old coordinator's
     * {@code train} reports where the run ended.
     */
    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void coordinatorCutOffAndDownedHandsTheRunToAStandbyThatEndsItBitIdenticalToTheUninterruptedRun()
            throws Exception {
        List<StepLoss> reference = uninterrupted();
        TrainProcess coordinator = start(FROZEN_COORDINATOR, "--workers", "2");
        assertEquals(1, coordinator.awaitStep(s -> true), "a fresh run starts at step 1");
        coordinator.awaitStep(s -> s == CHECKPOINT_INTERVAL + 2);
        List<ProcessHandle> workers = coordinator.process.children().toList();
        Path workerLogs = dir.resolve("runs").resolve(FROZEN_COORDINATOR).resolve("workers");
        try {
            assertEquals(2, workers.size(), "the coordinator's worker JVMs");
            signal("STOP", coordinator.process);
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
            while (!logsContain(workerLogs, "SBR took decision DownUnreachable")) {
                assertTrue(System.nanoTime() < deadline, "the workers did not down their frozen coordinator");
                Thread.sleep(200);
            }
            signal("CONT", coordinator.process);
            assertTrue(coordinator.process.waitFor(RUN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS),
                    "the old coordinator did not end with the run:\n" + coordinator.tail());
            coordinator.readToEnd();
            assertEquals(0, coordinator.process.exitValue(), coordinator.tail());
        } finally {
            signal("CONT", coordinator.process);
            workers.forEach(ProcessHandle::destroyForcibly);
        }
        JsonNode summary = JsonFiles.MAPPER.readTree(coordinator.output.stream().filter(l -> l.startsWith("{"))
                .reduce((a, b) -> b).orElseThrow(() -> new AssertionError("no JSON summary:\n" + coordinator.tail())));
        assertEquals("COMPLETED", summary.path("outcome").asText(), summary.toString());
        assertEquals(STEPS, summary.path("steps").asInt(), summary.toString());
        assertTrue(summary.hasNonNull("moved_to"), summary.toString());

        List<StepLoss> before = coordinator.steps;
        int last = before.get(before.size() - 1).step();
        assertEquals(IntStream.rangeClosed(1, last).boxed().toList(), before.stream().map(StepLoss::step).toList());
        List<StepLoss> takenOver = stepLines(workerLogs);
        assertTrue(!takenOver.isEmpty(), "the standby trained");
        int resumedAfter = takenOver.get(0).step() - 1;
        List<String> ids = checkpointIds(FROZEN_COORDINATOR);
        assertTrue(resumedAfter <= last && ids.contains(CheckpointStore.idOf(resumedAfter)),
                "the standby resumed from a checkpoint of the old coordinator's, not after step " + resumedAfter
                        + ": " + ids);
        assertEquals(IntStream.rangeClosed(resumedAfter + 1, STEPS).boxed().toList(),
                takenOver.stream().map(StepLoss::step).toList(), "and trained every step from there to the end");
        for (StepLoss done : concat(before, takenOver)) {
            assertEquals(reference.get(done.step() - 1), done, "against the uninterrupted run");
        }
        // besides the uninterrupted run's checkpoints, at most the one the old coordinator wrote when it stopped
        for (String id : checkpointIds(UNINTERRUPTED)) {
            assertTrue(ids.contains(id), id + " was written");
            CheckpointAssertions.assertSameCheckpoint(checkpoints(UNINTERRUPTED).resolve(id),
                    checkpoints(FROZEN_COORDINATOR).resolve(id));
        }
        List<String> extra = new ArrayList<>(ids);
        extra.removeAll(checkpointIds(UNINTERRUPTED));
        assertTrue(extra.isEmpty() || extra.equals(List.of(CheckpointStore.idOf(last))), "extra checkpoints " + extra);
    }

    private static void signal(String signal, Process process) throws IOException, InterruptedException {
        if (process.isAlive()) {
            new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).inheritIO().start().waitFor();
        }
    }

    private static boolean logsContain(Path logDir, String text) throws IOException {
        if (!Files.isDirectory(logDir)) {
            return false;
        }
        try (Stream<Path> logs = Files.list(logDir)) {
            for (Path log : logs.toList()) {
                if (Files.readString(log).contains(text)) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The step lines of the run's worker logs (a standby that hosted the run prints its steps there). */
    private static List<StepLoss> stepLines(Path logDir) throws IOException {
        List<StepLoss> steps = new ArrayList<>();
        try (Stream<Path> logs = Files.list(logDir)) {
            for (Path log : logs.sorted().toList()) {
                for (String line : Files.readAllLines(log)) {
                    Matcher m = STEP_LINE.matcher(line);
                    if (m.find()) {
                        steps.add(new StepLoss(Integer.parseInt(m.group(1)), m.group(2)));
                    }
                }
            }
        }
        return steps;
    }

    private static List<StepLoss> concat(List<StepLoss> a, List<StepLoss> b) {
        List<StepLoss> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    /** Runs the uninterrupted reference once for both tests; its step losses. */
    private List<StepLoss> uninterrupted() throws Exception {
        if (reference == null) {
            long t0 = System.nanoTime();
            TrainProcess uninterrupted = start(UNINTERRUPTED);
            assertEquals(1, uninterrupted.awaitStep(s -> true), "a fresh run starts at step 1");
            List<StepLoss> steps = uninterrupted.finish().steps;
            assertEquals(IntStream.rangeClosed(1, STEPS).boxed().toList(), steps.stream().map(StepLoss::step).toList());
            System.out.printf("uninterrupted run: %.1f s%n", seconds(t0));
            reference = List.copyOf(steps);
        }
        return reference;
    }

    /** Every checkpoint of {@code runId} was written, and equals the uninterrupted run's bit for bit. */
    private void assertSameCheckpointsAsUninterrupted(String runId) throws IOException {
        List<String> ids = IntStream.rangeClosed(1, STEPS / CHECKPOINT_INTERVAL)
                .mapToObj(i -> CheckpointStore.idOf(i * CHECKPOINT_INTERVAL)).toList();
        assertEquals(ids, checkpointIds(UNINTERRUPTED));
        assertEquals(ids, checkpointIds(runId), "every checkpoint was written, none left incomplete");
        for (String id : ids) {
            CheckpointAssertions.assertSameCheckpoint(checkpoints(UNINTERRUPTED).resolve(id),
                    checkpoints(runId).resolve(id));
        }
    }

    /** Starts the killed run's next child and checks that it goes on right after the newest complete checkpoint. */
    private TrainProcess resume() throws IOException, InterruptedException {
        int newest = newestCheckpoint(KILLED);
        TrainProcess child = start(KILLED);
        assertEquals(newest + 1, child.awaitStep(s -> true), "resumes after the newest checkpoint, step " + newest);
        return child;
    }

    private TrainProcess start(String runId, String... extraArgs) throws IOException {
        Path config = dir.resolve("kill-resume.conf");
        if (!Files.exists(config)) {
            // The settings that have no train flag: SpIEL reselects after steps 7, 17 and 27 (selection phases
            // span checkpoints 5, 15 and 25), every checkpoint is kept for the comparison, no evaluation.
            Files.writeString(config, """
                    spiel4j {
                      method { reselection-interval = 10, selection-steps = 3 }
                      checkpoint { interval = %d, keep = 0 }
                      eval.interval = 0
                      device = cpu
                    }
                    """.formatted(CHECKPOINT_INTERVAL));
        }
        List<String> jvm = new ArrayList<>(List.of("-Dai.djl.offline=true",
                "-Djava.util.concurrent.ForkJoinPool.common.parallelism=4", "-Xss4m",
                "-Dspiel4j.assets=" + SharedAssets.root()));
        if (Runtime.version().feature() >= 24) {
            jvm.add("--enable-native-access=ALL-UNNAMED");
        }
        ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                .filter(a -> a.startsWith("-XX:") || a.startsWith("-Xmx") || a.startsWith("-Xms"))
                .forEach(jvm::add);
        List<String> command = ChildRunner.javaCommand("dev.spiel4j.cli.Main", jvm, List.of("train",
                "--config", config.toString(), "--run-id", runId, "--out", dir.resolve("runs").toString(),
                "--model", SharedAssets.file("model/stories260K.gguf").toString(),
                "--data", SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl").toString(),
                "--method", "spiel-ag", "--steps", Integer.toString(STEPS), "--batch-size", Integer.toString(BATCH),
                "--seq-len", "64", "--seed", "7", "--json"));
        command.addAll(List.of(extraArgs));
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true);
        // as the launcher does (see ./spiel4j)
        pb.environment().putIfAbsent("MALLOC_ARENA_MAX", "2");
        Process p = pb.start();
        children.add(p);
        return new TrainProcess(p);
    }

    private Path checkpoints(String runId) {
        return dir.resolve("runs").resolve(runId).resolve("checkpoints");
    }

    private List<String> checkpointIds(String runId) {
        return new CheckpointStore(dir.resolve("runs").resolve(runId), 0).checkpoints().stream()
                .map(p -> p.getFileName().toString()).toList();
    }

    /** The step of the run's newest complete checkpoint, 0 if none. */
    private int newestCheckpoint(String runId) {
        List<String> ids = checkpointIds(runId);
        return ids.isEmpty() ? 0 : Integer.parseInt(ids.get(ids.size() - 1).substring("step-".length()));
    }

    /**
     * Waits (up to 10 s) until the killed run writes the checkpoint of {@code step}: true as soon as its temporary
     * directory exists, false if the complete checkpoint appears first.
     */
    private boolean awaitCheckpointWrite(int step) throws IOException {
        Path complete = checkpoints(KILLED).resolve(CheckpointStore.idOf(step));
        String temporary = "." + CheckpointStore.idOf(step) + "-";
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline && !Files.isDirectory(complete)) {
            if (Files.isDirectory(checkpoints(KILLED))) {
                try (Stream<Path> s = Files.list(checkpoints(KILLED))) {
                    if (s.anyMatch(p -> p.getFileName().toString().startsWith(temporary))) {
                        return true;
                    }
                }
            }
            Thread.onSpinWait();
        }
        return false;
    }

    /** Temporary checkpoint directories a kill interrupted (CheckpointStore renames complete ones into place). */
    private List<String> partialCheckpoints() throws IOException {
        if (!Files.isDirectory(checkpoints(KILLED))) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(checkpoints(KILLED))) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".")).sorted().toList();
        }
    }

    private static double seconds(long sinceNanos) {
        return (System.nanoTime() - sinceNanos) / 1e9;
    }

    private record StepLoss(int step, String loss) {
    }

    /** One child JVM running {@code train}: its output read line by line as it comes, the step lines parsed. */
    private static final class TrainProcess {
        private static final String END = "\u0000end of output";
        final Process process;
        final long startNanos = System.nanoTime();
        final BlockingQueue<String> unread = new LinkedBlockingQueue<>();
        final List<String> output = new CopyOnWriteArrayList<>();
        /** The steps this start reported, in order, with their loss as printed (4 decimals). */
        final List<StepLoss> steps = new CopyOnWriteArrayList<>();
        int firstStep = -1;
        private long firstStepSeenNanos;
        private long lastStepSeenNanos;

        TrainProcess(Process process) {
            this.process = process;
            Thread reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(),
                        StandardCharsets.UTF_8))) {
                    for (String line = r.readLine(); line != null; line = r.readLine()) {
                        output.add(line);
                        unread.add(line);
                    }
                } catch (IOException e) {
                    output.add("(reading the output failed: " + e + ")");
                } finally {
                    unread.add(END);
                }
            }, "train-child-output");
            reader.setDaemon(true);
            reader.start();
        }

        /** Reads output up to the first step line whose step matches; returns that step. */
        int awaitStep(IntPredicate wanted) throws InterruptedException {
            while (true) {
                String line = unread.poll(LINE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                if (line == null || line.equals(END)) {
                    fail((line == null ? "no output for " + LINE_TIMEOUT : "the child ended") + " before the"
                            + " awaited step line:\n" + tail());
                }
                OptionalInt step = parse(line);
                if (step.isPresent() && wanted.test(step.getAsInt())) {
                    return step.getAsInt();
                }
            }
        }

        /** Reads the rest of the output of the ended process. */
        void readToEnd() throws InterruptedException {
            for (String line = ""; !line.equals(END); ) {
                line = unread.poll(LINE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                assertNotNull(line, "the output of an ended child did not end:\n" + tail());
                parse(line);
            }
        }

        private OptionalInt parse(String line) {
            Matcher m = STEP_LINE.matcher(line);
            if (!m.find()) {
                return OptionalInt.empty();
            }
            int step = Integer.parseInt(m.group(1));
            lastStepSeenNanos = System.nanoTime();
            if (firstStep < 0) {
                firstStep = step;
                firstStepSeenNanos = lastStepSeenNanos;
            }
            steps.add(new StepLoss(step, m.group(2)));
            return OptionalInt.of(step);
        }

        /** Waits for a successful end with every step done; returns this. */
        TrainProcess finish() throws InterruptedException {
            assertTrue(process.waitFor(RUN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS), "the run did not end:\n"
                    + tail());
            readToEnd();
            assertEquals(0, process.exitValue(), "exit status:\n" + tail());
            String json = output.stream().filter(l -> l.startsWith("{")).reduce((a, b) -> b)
                    .orElseThrow(() -> new AssertionError("no JSON summary:\n" + tail()));
            JsonNode summary;
            try {
                summary = JsonFiles.MAPPER.readTree(json);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            assertEquals("COMPLETED", summary.path("outcome").asText(), json);
            assertTrue(summary.path("checkpoint").asText().endsWith(CheckpointStore.idOf(STEPS)), json);
            assertEquals(STEPS, steps.get(steps.size() - 1).step(), "the last step was reported:\n" + tail());
            return this;
        }

        /**
         * The mean time between this start's step lines so far, checkpoint writes and reselections included (one
         * step's own time can be far from the next one's).
         */
        long meanStepNanos() {
            return steps.size() < 2 ? 0 : (lastStepSeenNanos - firstStepSeenNanos) / (steps.size() - 1);
        }

        String tail() {
            List<String> all = List.copyOf(output);
            return String.join("\n", all.subList(Math.max(0, all.size() - 40), all.size()));
        }
    }
}
