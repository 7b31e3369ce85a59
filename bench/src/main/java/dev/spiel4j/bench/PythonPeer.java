package dev.spiel4j.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The Python side-by-side peer: Hugging Face PEFT LoRA and full fine-tuning in PyTorch on CPU
 * ({@code bench/peer_train.py}), run on the same {@link BenchSpec} and {@link BatchFile} as the spiel4j child, with
 * transformers' gradient checkpointing when the spec asks for activation checkpointing (a result that reports
 * another setting, model or method than the spec's is refused).
 * It keeps its own virtual environment (default {@code ~/.cache/spiel4j/peer-venv}), installs the pinned
 * {@code bench/peer-requirements.txt} into it from the machine's configured pip index on first use, and never
 * throws for a peer problem: every failure (no python3, no venv module, pip cannot install, the script fails or
 * times out) becomes a {@link PeerOutcome.CouldNotRun} whose reason the report prints as is.
 */
public final class PythonPeer {
    static final String REASON_PREFIX = "peer could not run: ";
    private static final String SCRIPT = "bench/peer_train.py";
    private static final String REQUIREMENTS = "bench/peer-requirements.txt";
    private static final String MARKER = ".spiel4j-requirements";

    private final String python;
    private final Path venv;
    private final Duration installTimeout;

    /**
     * @param python         the interpreter that creates the venv ("python3")
     * @param venv           the virtual environment's directory (created when absent)
     * @param installTimeout limit for creating the venv and installing the requirements
     */
    PythonPeer(String python, Path venv, Duration installTimeout) {
        this.python = python;
        this.venv = venv;
        this.installTimeout = installTimeout;
    }

    /** The default peer: python3, venv under {@code ~/.cache/spiel4j/peer-venv}, 30 minutes to install. */
    public static PythonPeer defaults() {
        return new PythonPeer("python3", Path.of(System.getProperty("user.home"), ".cache", "spiel4j", "peer-venv"),
                Duration.ofMinutes(30));
    }

    /**
     * Runs the peer on {@code spec} (written to {@code specFile}, whose batches file it reads).
     *
     * @param timeout limit for the training run itself (installation has its own)
     * @param env     environment variables for the training run (none: the inherited environment)
     */
    PeerOutcome run(BenchSpec spec, Path specFile, Duration timeout, Map<String, String> env) {
        if (!BenchSpec.PEER_METHODS.contains(spec.method())) {
            return new PeerOutcome.CouldNotRun("method '" + spec.method() + "' has no Python peer (it runs "
                    + BenchSpec.PEER_METHODS + ")");
        }
        if (spec.model().hfDir() == null && spec.model().random() == null) {
            return new PeerOutcome.CouldNotRun("model '" + spec.model().name()
                    + "' has no Hugging Face checkpoint (hf_dir) for the peer to load");
        }
        String problem = ensureEnvironment();
        if (problem != null) {
            return new PeerOutcome.CouldNotRun(problem);
        }
        Path script;
        try {
            script = copyResource(SCRIPT, venv.resolve("peer_train.py"));
        } catch (IOException e) {
            return new PeerOutcome.CouldNotRun("cannot write the peer script into " + venv + ": " + e.getMessage());
        }
        ChildRunner.Outcome out = ChildRunner.run(BenchHarness.withEnvironment(env,
                List.of(venvPython().toString(), script.toString(), specFile.toAbsolutePath().toString())), timeout);
        if (!out.succeeded()) {
            return new PeerOutcome.CouldNotRun("the peer's training run failed, " + out.failureReason());
        }
        RunMeasurement m;
        try {
            m = RunMeasurement.fromJson(out.result().orElseThrow());
        } catch (IllegalArgumentException e) {
            return new PeerOutcome.CouldNotRun("the peer's result is malformed: " + e.getMessage());
        }
        String mismatch = m.mismatch(spec);
        return mismatch == null ? new PeerOutcome.Ran(m)
                : new PeerOutcome.CouldNotRun("the peer ran another configuration: " + mismatch);
    }

    /** Whether the venv already holds the pinned requirements (then {@link #run} starts without installing). */
    boolean isInstalled() {
        try (InputStream in = resource(REQUIREMENTS)) {
            Path marker = venv.resolve(MARKER);
            return Files.exists(marker)
                    && Files.readString(marker).equals(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            return false;
        }
    }

    /** Creates the venv and installs the pinned requirements once; returns null when ready, else why not. */
    String ensureEnvironment() {
        if (isInstalled()) {
            return null;
        }
        String requirements;
        try (InputStream in = resource(REQUIREMENTS)) {
            requirements = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "cannot read " + REQUIREMENTS + ": " + e.getMessage();
        }
        Path marker = venv.resolve(MARKER);
        try {
            Files.createDirectories(venv.getParent());
        } catch (IOException e) {
            return "cannot prepare " + venv + ": " + e.getMessage();
        }
        Path log = venv.resolveSibling(venv.getFileName() + "-install.log");
        if (!Files.exists(venvPython())) {
            String failed = exec(List.of(python, "-m", "venv", venv.toString()), log);
            if (failed != null) {
                return "cannot create a virtual environment with '" + python + " -m venv': " + failed;
            }
        }
        try {
            Path req = copyResource(REQUIREMENTS, venv.resolve("peer-requirements.txt"));
            // The configured index is used as is; one retry keeps an unreachable default index from costing
            // minutes of back-off per package.
            String failed = exec(List.of(venvPython().toString(), "-m", "pip", "install", "--retries", "1",
                    "-r", req.toString()), log);
            if (failed != null) {
                return "pip could not install " + requirements.strip().replace('\n', ' ') + ": " + failed;
            }
            Files.writeString(marker, requirements);
            return null;
        } catch (IOException e) {
            return "cannot install into " + venv + ": " + e.getMessage();
        }
    }

    Path venvPython() {
        return venv.resolve("bin").resolve("python");
    }

    /** Runs a setup command, appending its output to {@code log}; null on success, else a short reason. */
    private String exec(List<String> cmd, Path log) {
        try {
            Files.writeString(log, "$ " + String.join(" ", cmd) + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
            p.getOutputStream().close();
            if (!p.waitFor(installTimeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly().waitFor();
                return "timed out after " + installTimeout.toMinutes() + " min (log: " + log + ")";
            }
            return p.exitValue() == 0 ? null : "exit " + p.exitValue() + ": " + lastLine(log) + " (log: " + log + ")";
        } catch (IOException e) {
            return e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    private static String lastLine(Path log) throws IOException {
        List<String> lines = new ArrayList<>(Files.readAllLines(log, StandardCharsets.UTF_8));
        lines.removeIf(String::isBlank);
        return lines.isEmpty() ? "(no output)" : lines.get(lines.size() - 1).strip();
    }

    private static InputStream resource(String name) throws IOException {
        InputStream in = PythonPeer.class.getClassLoader().getResourceAsStream(name);
        if (in == null) {
            throw new IOException("resource " + name + " is not on the class path");
        }
        return in;
    }

    private static Path copyResource(String name, Path target) throws IOException {
        try (InputStream in = resource(name)) {
            Files.createDirectories(target.getParent());
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
            return target;
        }
    }
}
