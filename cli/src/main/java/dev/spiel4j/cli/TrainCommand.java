package dev.spiel4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.config.RunSettings;
import dev.spiel4j.hub.HubClient;
import dev.spiel4j.peft.registry.MethodRegistry;
import dev.spiel4j.service.CheckpointStore;
import dev.spiel4j.service.ClusterNodes;
import dev.spiel4j.service.ProgressListener;
import dev.spiel4j.service.RunSummary;
import dev.spiel4j.service.SavedCheckpoint;
import dev.spiel4j.service.StepReport;
import dev.spiel4j.service.TrainingService;
import dev.spiel4j.train.ProcMemory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * {@code train}: a training run through the actor service ({@link TrainingService}). The configuration is layered:
 * {@code reference.conf}, then {@code --config FILE} (default {@code config/quickstart.conf}), then the engine
 * flags below, then {@code key=value} arguments. The CLI holds no training logic: it builds the configuration,
 * starts the run, prints progress, and reports the summary.
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Fine-tune through the actor service (embedded Kafka unless kafka.bootstrap-servers is set).",
                "JSON: {\"method\", \"trainable_params\", \"steps\", \"eval_loss_before\", \"eval_loss_after\","
                        + " \"step_time_median_s\", \"peak_rss_mb\", \"checkpoint\", \"run_id\", \"checkpoints\","
                        + " \"dead_letters\", \"workers\", \"worker_failures\", \"exchange_bytes_per_step\","
                        + " \"exchange_seconds_per_step\", \"outcome\", \"failure\"}; outcome COMPLETED, STOPPED or"
                        + " FAILED (then failure says why and the exit code is 1). A coordinator downed while its"
                        + " run moved to a standby worker reports {\"method\", \"run_id\", \"workers\", \"moved_to\","
                        + " \"steps\", \"outcome\", \"failure\"} from that worker."})
final class TrainCommand extends CliCommand {
    static final Path DEFAULT_CONFIG = Path.of("config", "quickstart.conf");

    @Option(names = "--config", paramLabel = "FILE", description = "HOCON run configuration (default: config/quickstart.conf).")
    Path config;

    @Option(names = "--model", paramLabel = "PATH", description = {
            "GGUF file or Hugging Face directory (model.path).", HubInputs.HELP})
    String model;

    @Option(names = "--data", paramLabel = "FILE",
            description = "Training data: .txt, .json or .jsonl (data.train), or an hf:// file.")
    String data;

    @Option(names = "--eval-data", paramLabel = "FILE",
            description = "Held-out data (eval.data; default: a held-out slice), or an hf:// file.")
    String evalData;

    @Option(names = "--method", paramLabel = "NAME", completionCandidates = MethodNames.class,
            description = "One of ${COMPLETION-CANDIDATES} (method.name).")
    String method;

    /** The registered methods' names, for picocli's help and completion. */
    static final class MethodNames implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return MethodRegistry.names().iterator();
        }
    }

    @Option(names = "--density", paramLabel = "D", description = "Sparse budget as a fraction of all parameters.")
    Double density;

    @Option(names = "--num-deltas", paramLabel = "N", description = "Sparse budget as an absolute count.")
    Long numDeltas;

    @Option(names = "--match-lora-rank", paramLabel = "R", description = "Sparse budget equal to LoRA rank R's parameters.")
    Integer matchLoraRank;

    @Option(names = "--rank", paramLabel = "R", description = "LoRA rank (method.lora.rank).")
    Integer rank;

    @Option(names = "--steps", paramLabel = "N", description = "Optimizer steps (schedule.steps).")
    Long steps;

    @Option(names = "--batch-size", paramLabel = "B", description = "Examples per step (batch.size).")
    Integer batchSize;

    @Option(names = "--seq-len", paramLabel = "L", description = "Maximum tokens per example (data.seq-len).")
    Integer seqLen;

    @Option(names = "--lr", paramLabel = "LR", description = "Peak learning rate (optimizer.lr; default: the method's own rate, optimizer.lr-by-method).")
    Double lr;

    @Option(names = "--weight-decay", paramLabel = "W", description = "Decoupled weight decay (optimizer.weight-decay).")
    Double weightDecay;

    @Option(names = "--seed", paramLabel = "S", description = "Run seed (run.seed).")
    Long seed;

    @Option(names = "--out", paramLabel = "DIR", description = "Parent directory of run directories (run.dir).")
    String out;

    @Option(names = "--activation-checkpointing", description = "Keep only each block's input in the forward pass and"
            + " recompute the block in its backward segment: less memory, one more forward pass"
            + " (train.activation-checkpointing).")
    Boolean activationCheckpointing;

    @Option(names = "--init-from", paramLabel = "PATH", description = "Start a SpIEL run from these deltas (a sparse"
            + " fine-tuning file or an SFT adapter directory) instead of random indices (train.init-from).")
    String initFrom;

    @Option(names = "--quantize", paramLabel = "KIND", description = "none, or nf4: the block linears stored as 4-bit"
            + " NormalFloat, the base of qSpIEL and qLoRA (model.quantize).")
    String quantize;

    @Option(names = "--workers", paramLabel = "N", description = "Data-parallel on a Pekko Cluster: start N gradient"
            + " worker JVMs on this machine that join this run (cluster.workers; README, \"Scale-out\").")
    Integer workers;

    @Option(names = "--run-id", paramLabel = "ID", description = "Run id; an existing run resumes from its last checkpoint.")
    String runId;

    @Parameters(paramLabel = "KEY=VALUE", description = "Configuration overrides, e.g. batch.size=4 eval.interval=25.")
    List<String> overrides = new ArrayList<>();

    @Override
    Result run() throws Exception {
        Path file = config != null ? requireExisting(config, "--config", false) : DEFAULT_CONFIG;
        if (config == null && !Files.isRegularFile(file)) {
            throw usage("no --config given and " + file.toAbsolutePath() + " does not exist (run from the repository"
                    + " root or pass --config FILE)");
        }
        for (String o : overrides) {
            if (!o.contains("=")) {
                throw usage("'" + o + "' is not a KEY=VALUE configuration override");
            }
        }
        Config cfg;
        try {
            cfg = RunSettings.load(file, engineOverrides());
            // hf:// locations (flags or the file's) are fetched here, with progress on stderr, and the run gets their
            // local copies; the rest of the configuration is checked after them (a second attempt downloads nothing)
            cfg = RunSettings.resolveHubLocations(cfg, HubClient.fromEnvironment(this::progress));
            RunSettings.from(cfg);
        } catch (ConfigException e) {
            throw usage(e.getMessage());
        }
        Summary progress = new Summary(this::progress);
        RunSettings settings = RunSettings.from(cfg);
        RunSummary s;
        if (settings.cluster().enabled()) {
            TrainingService.Run run = TrainingService.start(cfg, progress);
            String address = ClusterNodes.address(run.system());
            progress("coordinator of run " + run.settings().run().id() + " at " + address + "; workers join with"
                    + " ./spiel4j worker --join " + address);
            Path workerLogs = run.settings().run().runDir().resolve("workers");
            try (WorkerProcesses local = WorkerProcesses.start(workers == null ? 0 : workers, address,
                    settings.cluster().host(), workerLogs)) {
                try {
                    s = run.await();
                } catch (RuntimeException e) {
                    if (!run.movedAway()) {
                        throw e;
                    }
                    s = null;
                }
                if (run.movedAway()) {
                    // its workers must live on: one of them hosts the run now
                    progress("this node was cut off from the run's cluster and downed: a standby worker took run "
                            + run.settings().run().id() + " over from its last checkpoint; waiting for the workers to"
                            + " end (their logs: " + workerLogs + ")");
                    return movedResult(settings, local.awaitHostedRun());
                }
            }
        } else {
            s = TrainingService.run(cfg, progress);
        }
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("method", settings.method().name());
        json.put("trainable_params", s.lastCheckpoint() == null ? null : Long.valueOf(SparseFineTuning.load(
                s.lastCheckpoint().resolve(CheckpointStore.DELTA_FILE)).hyperparameters().get("trainable_parameters")));
        json.put("steps", s.steps());
        json.put("eval_loss_before", progress.firstEval);
        json.put("eval_loss_after", s.finalEvalLoss().isPresent() ? s.finalEvalLoss().getAsDouble() : null);
        json.put("step_time_median_s", progress.medianStepSeconds());
        json.put("peak_rss_mb", ProcMemory.selfStatusBytes("VmHWM").orElse(0) / (1024.0 * 1024.0));
        json.put("checkpoint", s.lastCheckpoint() == null ? null : s.lastCheckpoint().toString());
        json.put("run_id", s.runId());
        json.put("checkpoints", s.checkpoints());
        json.put("dead_letters", s.deadLetters());
        json.put("workers", s.cluster().workers());
        json.put("worker_failures", s.cluster().workerFailures());
        json.put("exchange_bytes_per_step", s.cluster().exchangeBytesPerStep());
        json.put("exchange_seconds_per_step", s.cluster().exchangeSecondsPerStep());
        json.put("outcome", s.outcome().name());
        json.put("failure", s.error());
        String text = String.format("run %s %s after %d steps in %.0f s; final loss %.4f%s; %d checkpoints (last: %s);"
                        + " %d dead letters", s.runId(), s.outcome().name().toLowerCase(), s.steps(), s.seconds(),
                s.finalLoss(), s.finalEvalLoss().isPresent()
                        ? String.format(", held-out loss %.4f", s.finalEvalLoss().getAsDouble()) : "",
                s.checkpoints(), s.lastCheckpoint(), s.deadLetters());
        return s.outcome() == RunSummary.Outcome.FAILED
                ? new Result(text, json, "run " + s.runId() + " failed: " + s.error())
                : new Result(text, json);
    }

    /** The result of a run whose coordinator moved to a standby worker: that worker's account of the run's end. */
    private static Result movedResult(RunSettings settings, Optional<JsonNode> hosted) {
        String id = settings.run().id();
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("method", settings.method().name());
        json.put("run_id", id);
        json.put("workers", settings.cluster().workers());
        json.put("moved_to", hosted.map(h -> h.path("worker").asText()).orElse(null));
        json.put("steps", hosted.map(h -> h.path("hosted_run_steps").isNumber() ? h.path("hosted_run_steps").asInt()
                : null).orElse(null));
        String outcome = hosted.map(h -> h.path("hosted_run_outcome").asText(null)).orElse(null);
        String failure = hosted.map(h -> h.path("hosted_run_failure").asText(null))
                .orElse(hosted.isEmpty() ? "no worker took the run over" : null);
        json.put("outcome", outcome);
        json.put("failure", failure);
        if (outcome == null || outcome.equals(RunSummary.Outcome.FAILED.name())) {
            return new Result("run " + id + " moved to a standby worker and did not end well", json,
                    "run " + id + " moved to a standby worker: " + (failure != null ? failure : "it failed there"));
        }
        return new Result("run " + id + " moved to standby worker " + json.get("moved_to") + " after this node was"
                + " downed: " + outcome.toLowerCase() + " after " + json.get("steps") + " steps", json);
    }

    /** The engine flags as configuration overrides, placed before the explicit key=value ones so those win. */
    private List<String> engineOverrides() {
        List<String> o = new ArrayList<>();
        put(o, "model.path", model);
        put(o, "data.train", data);
        put(o, "eval.data", evalData);
        put(o, "method.name", method);
        int budgets = (density != null ? 1 : 0) + (numDeltas != null ? 1 : 0) + (matchLoraRank != null ? 1 : 0);
        if (budgets > 1) {
            throw usage("give at most one of --density, --num-deltas and --match-lora-rank");
        }
        if (budgets == 1) {
            put(o, "method.budget.density", density != null ? density : 0);
            put(o, "method.budget.num-deltas", numDeltas != null ? numDeltas : 0);
            put(o, "method.budget.match-lora-rank", matchLoraRank != null ? matchLoraRank : 0);
        }
        put(o, "method.lora.rank", rank);
        put(o, "schedule.steps", steps);
        put(o, "batch.size", batchSize);
        put(o, "data.seq-len", seqLen);
        put(o, "optimizer.lr", lr);
        put(o, "optimizer.weight-decay", weightDecay);
        put(o, "run.seed", seed);
        put(o, "run.dir", out);
        put(o, "run.id", runId);
        put(o, "train.activation-checkpointing", activationCheckpointing);
        put(o, "model.quantize", quantize);
        put(o, "train.init-from", initFrom);
        if (workers != null && workers < 1) {
            throw usage("--workers " + workers + ": give at least 1 (or leave it out to train in this process)");
        }
        put(o, "cluster.workers", workers);
        o.addAll(overrides);
        return o;
    }

    private static void put(List<String> overrides, String key, Object value) {
        if (value != null) {
            String v = value.toString();
            overrides.add(key + "=" + (value instanceof String ? quote(v) : v));
        }
    }

    private static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    /** Prints progress to stderr and keeps what the JSON summary needs. */
    private static final class Summary implements ProgressListener {
        private final ProgressListener terminal;
        private final List<Double> stepSeconds = new ArrayList<>();
        private Double firstEval;

        Summary(Consumer<String> err) {
            this.terminal = ProgressListener.terminal(err);
        }

        @Override
        public void onStep(StepReport step) {
            stepSeconds.add(step.seconds());
            terminal.onStep(step);
        }

        @Override
        public void onEvaluation(int step, double loss) {
            if (firstEval == null) {
                firstEval = loss;
            }
            terminal.onEvaluation(step, loss);
        }

        @Override
        public void onCheckpoint(SavedCheckpoint checkpoint) {
            terminal.onCheckpoint(checkpoint);
        }

        @Override
        public void onTrainerFailure(String message) {
            terminal.onTrainerFailure(message);
        }

        @Override
        public void onTrainerRestart(int step) {
            terminal.onTrainerRestart(step);
        }

        Double medianStepSeconds() {
            if (stepSeconds.isEmpty()) {
                return null;
            }
            double[] s = stepSeconds.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
        }
    }
}
