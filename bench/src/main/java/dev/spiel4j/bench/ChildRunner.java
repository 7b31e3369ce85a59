package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.spiel4j.train.ProcMemory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;

/**
 * Runs one benchmark configuration in a fresh process so that its peak memory is its own, optionally under a
 * memory cap, and reads the one JSON object the child prints as its last line of stdout.
 *
 * <p>A cap is enforced by a cgroup v1 memory limit when this machine lets us create one (exact: the kernel stops
 * the child at the limit), otherwise by polling the child's RSS every {@link #POLL_INTERVAL} and killing it
 * above the cap (approximate: a spike shorter than the interval can slip through). {@link Outcome#enforcement()}
 * says which was used. Without a cap the child is still polled, for its peak RSS.
 */
public final class ChildRunner {
    static final Duration POLL_INTERVAL = Duration.ofMillis(20);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int STDERR_TAIL_CHARS = 4000;

    /** How a memory cap was enforced. */
    public enum Enforcement { NONE, CGROUP_V1, POLLING }

    /**
     * What came of one child run.
     *
     * @param exitCode         the child's exit status (137 = killed by SIGKILL, e.g. the OOM killer)
     * @param timedOut         the child ran past the timeout and was killed
     * @param capExceeded      the child was stopped for exceeding the memory cap
     * @param enforcement      how the cap was enforced
     * @param polledPeakBytes  the largest VmHWM observed while polling (a lower bound of the true peak; the
     *                         child's own report at exit is exact)
     * @param wallSeconds      wall time from start to exit
     * @param result           the last stdout line parsed as a JSON object, if it was one
     * @param stderrTail       the end of the child's stderr, for error messages
     */
    public record Outcome(int exitCode, boolean timedOut, boolean capExceeded, Enforcement enforcement,
                          long polledPeakBytes, double wallSeconds,
                          Optional<JsonNode> result, String stderrTail) {

        /** Exited 0 within time and cap, with a JSON result whose status is "ok". */
        boolean succeeded() {
            return exitCode == 0 && !timedOut && !capExceeded
                    && result.map(r -> "ok".equals(r.path("status").asText())).orElse(false);
        }

        /** A one-line reason for a failed run. */
        String failureReason() {
            if (timedOut) {
                return "timed out after " + String.format(Locale.ROOT, "%.1f", wallSeconds) + " s";
            }
            if (capExceeded) {
                return "exceeded the memory cap (" + enforcement + ")";
            }
            Optional<String> error = result.map(r -> r.path("error").asText(null));
            if (error.isPresent() && error.get() != null) {
                return "exit " + exitCode + ": " + error.get();
            }
            String tail = stderrTail.strip();
            int nl = tail.lastIndexOf('\n');
            return "exit " + exitCode + (tail.isEmpty() ? "" : ": " + (nl >= 0 ? tail.substring(nl + 1) : tail));
        }
    }

    private ChildRunner() {
    }

    /** Runs {@code command} without a memory cap. */
    public static Outcome run(List<String> command, Duration timeout) {
        return run(command, timeout, OptionalLong.empty(), false);
    }

    /**
     * Runs {@code command} (no shell involved unless the cap needs one), waits up to {@code timeout}.
     *
     * @param capBytes     memory cap, or empty for none
     * @param forcePolling enforce the cap by polling even where a cgroup could be created (for tests and for
     *                     machines where the cgroup's page-cache accounting is unwanted)
     */
    public static Outcome run(List<String> command, Duration timeout, OptionalLong capBytes, boolean forcePolling) {
        if (command.isEmpty()) {
            throw new IllegalArgumentException("child command is empty");
        }
        Optional<CgroupMemoryCap> cgroup = capBytes.isPresent() && !forcePolling
                ? CgroupMemoryCap.create(capBytes.getAsLong()) : Optional.empty();
        Enforcement enforcement = capBytes.isEmpty() ? Enforcement.NONE
                : cgroup.isPresent() ? Enforcement.CGROUP_V1 : Enforcement.POLLING;
        Path out = null, err = null;
        try {
            out = Files.createTempFile("spiel4j-child-", ".out");
            err = Files.createTempFile("spiel4j-child-", ".err");
            ProcessBuilder pb = new ProcessBuilder(cgroup.map(c -> c.wrap(command)).orElse(command))
                    .redirectOutput(out.toFile()).redirectError(err.toFile());
            long start = System.nanoTime();
            Process p = pb.start();
            p.getOutputStream().close(); // the child reads nothing from us
            long deadline = start + timeout.toNanos();
            long peak = 0;
            boolean timedOut = false, pollKilled = false;
            while (true) {
                if (p.waitFor(POLL_INTERVAL.toMillis(), TimeUnit.MILLISECONDS)) {
                    break;
                }
                peak = Math.max(peak, ProcMemory.statusBytes(p.pid(), "VmHWM").orElse(0));
                if (enforcement == Enforcement.POLLING
                        && ProcMemory.statusBytes(p.pid(), "VmRSS").orElse(0) > capBytes.getAsLong()) {
                    pollKilled = true;
                    killAndWait(p);
                    break;
                }
                if (System.nanoTime() > deadline) {
                    timedOut = true;
                    killAndWait(p);
                    break;
                }
            }
            double wall = (System.nanoTime() - start) / 1e9;
            int exit = p.exitValue();
            boolean oom = cgroup.map(CgroupMemoryCap::oomKilled).orElse(false);
            return new Outcome(exit, timedOut, pollKilled || oom, enforcement, peak, wall,
                    lastJsonLine(out), tail(err));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run child " + command, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running child " + command, e);
        } finally {
            cgroup.ifPresent(CgroupMemoryCap::close);
            deleteQuietly(out);
            deleteQuietly(err);
        }
    }

    /**
     * A command that starts {@code mainClass} in a fresh JVM: the same java binary and class path as this JVM,
     * plus {@code jvmOptions} (pass an explicit -Xmx so the heap does not size itself from a cap: a JVM sees a
     * cgroup limit and would otherwise take a quarter of it).
     */
    public static List<String> javaCommand(String mainClass, List<String> jvmOptions, List<String> args) {
        String java = ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> cmd = new ArrayList<>();
        cmd.add(java);
        cmd.addAll(jvmOptions);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass);
        cmd.addAll(args);
        return cmd;
    }

    static Optional<JsonNode> lastJsonLine(Path stdout) throws IOException {
        List<String> lines = Files.readAllLines(stdout, StandardCharsets.UTF_8);
        for (int i = lines.size() - 1; i >= 0; i--) {
            String line = lines.get(i).strip();
            if (line.isEmpty()) {
                continue;
            }
            try {
                JsonNode node = JSON.readTree(line);
                return node != null && node.isObject() ? Optional.of(node) : Optional.empty();
            } catch (IOException e) {
                return Optional.empty();
            }
        }
        return Optional.empty();
    }

    private static String tail(Path file) throws IOException {
        String s = Files.readString(file, StandardCharsets.UTF_8);
        return s.length() <= STDERR_TAIL_CHARS ? s : s.substring(s.length() - STDERR_TAIL_CHARS);
    }

    private static void killAndWait(Process p) throws InterruptedException {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        p.waitFor();
    }

    private static void deleteQuietly(Path p) {
        if (p != null) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // a temp file; the OS cleans /tmp
            }
        }
    }
}
