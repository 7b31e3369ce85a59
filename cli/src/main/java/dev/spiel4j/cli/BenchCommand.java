package dev.spiel4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.spiel4j.bench.BatchFile;
import dev.spiel4j.bench.BenchHarness;
import dev.spiel4j.bench.BenchPlan;
import dev.spiel4j.bench.BenchReport;
import dev.spiel4j.bench.BenchSuites;
import dev.spiel4j.bench.PythonPeer;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.tokenizer.SentencePieceBpe;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * {@code bench}: the benchmark harness (see {@link BenchHarness}): every configuration in a fresh JVM, the Python
 * peer beside it, scaling sweeps and the minimum-memory bisection; writes {@code report.md}, {@code results.json}
 * and PNG plots into {@code --out}.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Benchmark every fine-tuning method side by side (and the Python peer).")
final class BenchCommand extends CliCommand {
    /** Rows of the real instruction batches; the batch shape the quick suite trains stories260K with. */
    private static final int SEQ_LEN = 128;
    private static final int BATCH = 4;

    @Option(names = "--suite", defaultValue = "quick", paramLabel = "quick|full",
            description = "quick (minutes) or full (more steps, larger sweeps). Default: ${DEFAULT-VALUE}.")
    String suite;

    @Option(names = "--out", defaultValue = "runs/bench", paramLabel = "DIR",
            description = "Where the report, raw JSON and plots go. Default: ${DEFAULT-VALUE}.")
    Path out;

    @Option(names = "--threads", defaultValue = "2", paramLabel = "N",
            description = "Intra-op threads of every run, spiel4j and peer alike. Default: ${DEFAULT-VALUE}.")
    int threads;

    @Option(names = "--no-peer", description = "Do not run the Python peer (PyTorch + PEFT).")
    boolean noPeer;

    @Option(names = "--child-heap", defaultValue = "6g", paramLabel = "SIZE",
            description = "-Xmx of each configuration's JVM. Default: ${DEFAULT-VALUE}.")
    String childHeap;

    @Option(names = "--child-env", paramLabel = "NAME=VALUE",
            description = "An environment variable for every spiel4j configuration's JVM (repeatable), e.g."
                    + " MALLOC_ARENA_MAX=1 to see how much of a memory figure is the C allocator's.")
    Map<String, String> childEnv = new java.util.LinkedHashMap<>();

    @Option(names = "--timed-runs", defaultValue = "3", paramLabel = "N",
            description = "Time each configuration's steps N times, in N rounds over all configurations (the"
                    + " peer's too), and take its step times from all of them: on a busy or small machine one run's"
                    + " median can move by 10-30 %%. Default: ${DEFAULT-VALUE}.")
    int timedRuns;

    @Option(names = "--memory-from-timed-run",
            description = "Take memory figures from the timed runs, under the default C allocator, instead of a"
                    + " second run of each configuration with MALLOC_MMAP_THRESHOLD_=65536 (see BENCHMARKS.md).")
    boolean memoryFromTimedRun;

    @Override
    Result run() throws Exception {
        if (!suite.equals("quick") && !suite.equals("full")) {
            throw usage("--suite: expected quick or full, got '" + suite + "'");
        }
        if (threads < 1) {
            throw usage("--threads: must be at least 1, got " + threads);
        }
        if (timedRuns < 1) {
            throw usage("--timed-runs: must be at least 1, got " + timedRuns);
        }
        Path gguf = SharedAssets.file("model/stories260K.gguf");
        Path hf = SharedAssets.file("model/stories260K-hf");
        Path data = SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl");
        Path work = Files.createDirectories(out.resolve("work"));

        progress("bench: preparing instruction batches from " + data.getFileName());
        Path batches = work.resolve("instructions.json");
        BatchFile.instructions(data, SentencePieceBpe.fromModelFile(SharedAssets.file("model/tok512.model")),
                SEQ_LEN, BATCH, 24, 4, 42).write(batches);

        StringBuilder command = new StringBuilder("./spiel4j bench --suite " + suite + " --threads " + threads
                + " --timed-runs " + timedRuns
                + (noPeer ? " --no-peer" : "") + (memoryFromTimedRun ? " --memory-from-timed-run" : ""));
        childEnv.forEach((k, v) -> command.append(" --child-env ").append(k).append('=').append(v));
        BenchSuites.Inputs inputs = new BenchSuites.Inputs(gguf, hf, batches, work, threads);
        BenchPlan plan = suite.equals("quick") ? BenchSuites.quick(inputs, command.toString())
                : BenchSuites.full(inputs, command.toString());
        BenchHarness.Options options = new BenchHarness.Options(work, Duration.ofMinutes(10), childHeap,
                noPeer ? null : PythonPeer.defaults(), 16L << 20, 6, false, childEnv,
                memoryFromTimedRun ? Map.of() : BenchHarness.LIVE_MEMORY, timedRuns);
        BenchReport report = new BenchHarness(options, this::progress).run(plan);
        report.writeAll(out);
        progress("bench: wrote " + out.resolve("report.md") + ", results.json and plots");
        @SuppressWarnings("unchecked")
        Map<String, Object> json = new ObjectMapper().convertValue(report.json(), Map.class);
        return new Result(report.markdown(), json);
    }
}
