package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalLong;

/**
 * What one run (a spiel4j child or the Python peer: both print the same JSON keys) measured. Memory: the base
 * model is in memory at {@code rssAfterLoadBytes}; the peak is then reset, so {@code peakRssTrainBytes} is the
 * peak of attaching the method and training; {@link #overheadBytes()} is their difference.
 *
 * @param tool               "spiel4j" or "python-peft"
 * @param activationCheckpointing whether the run recomputed each block's forward pass in its backward pass (as the
 *                           run itself reports it: the peer reports what transformers says is enabled)
 * @param tokensPerStep      real (attention-mask) tokens per measured step, averaged over the measured steps
 * @param stepTimesSeconds   wall time of each measured step (warm-up excluded)
 * @param peakRssTrainBytes  VmHWM after training, reset after loading; empty when the kernel refused the reset
 * @param peakRssBytes       the whole process's peak
 */
record RunMeasurement(String tool, String model, String method, boolean activationCheckpointing,
                      String dtype, int threads,
                      long trainableParams, long baseWeightBytes, long optimizerStateBytes,
                      double tokensPerStep, int warmupSteps, double[] stepTimesSeconds, double[] trainLosses,
                      OptionalDouble evalLossInitial, OptionalDouble evalLoss, long rssAfterLoadBytes,
                      long peakRssLoadBytes, OptionalLong peakRssTrainBytes, long peakRssBytes) {

    /** Step-time median and spread. */
    public Stats.Summary stepTimes() {
        return Stats.summarize(stepTimesSeconds);
    }

    /** Tokens per second at the median step time. */
    public double tokensPerSecond() {
        return tokensPerStep / stepTimes().median();
    }

    /**
     * Memory above the loaded base model: training peak minus RSS after loading (the whole-process peak stands
     * in for the training peak when the peak could not be reset, which can only overstate the overhead).
     */
    public long overheadBytes() {
        return Math.max(0, peakRssTrainBytes.orElse(peakRssBytes) - rssAfterLoadBytes);
    }

    /**
     * This run's step times and losses with {@code memoryRun}'s memory figures: the harness times a configuration
     * under the default C allocator and takes its memory from a second run whose allocator returns freed blocks to
     * the system at once (see {@link BenchHarness.Options#memoryEnv()}).
     */
    public RunMeasurement withMemoryOf(RunMeasurement memoryRun) {
        return new RunMeasurement(tool, model, method, activationCheckpointing, dtype, threads, trainableParams,
                baseWeightBytes, optimizerStateBytes, tokensPerStep, warmupSteps, stepTimesSeconds, trainLosses,
                evalLossInitial, evalLoss, memoryRun.rssAfterLoadBytes, memoryRun.peakRssLoadBytes,
                memoryRun.peakRssTrainBytes, memoryRun.peakRssBytes);
    }

    /**
     * This run with {@code later}'s step times after its own: one configuration timed more than once, its step
     * times taken together (the harness times every configuration in rounds, see
     * {@link BenchHarness.Options#timedRuns()}).
     */
    public RunMeasurement withStepTimesOf(RunMeasurement later) {
        double[] pooled = Arrays.copyOf(stepTimesSeconds, stepTimesSeconds.length + later.stepTimesSeconds.length);
        System.arraycopy(later.stepTimesSeconds, 0, pooled, stepTimesSeconds.length, later.stepTimesSeconds.length);
        return new RunMeasurement(tool, model, method, activationCheckpointing, dtype, threads, trainableParams,
                baseWeightBytes, optimizerStateBytes, tokensPerStep, warmupSteps, pooled, trainLosses,
                evalLossInitial, evalLoss, rssAfterLoadBytes, peakRssLoadBytes, peakRssTrainBytes, peakRssBytes);
    }

    /** Parses a child's or the peer's result line; a missing or malformed field is named in the exception. */
    public static RunMeasurement fromJson(JsonNode n) {
        if (!"ok".equals(n.path("status").asText())) {
            throw new IllegalArgumentException("run result has status '" + n.path("status").asText()
                    + "': " + n.path("error").asText("(no error message)"));
        }
        return new RunMeasurement(text(n, "tool"), text(n, "model"), text(n, "method"),
                bool(n, "activation_checkpointing"), text(n, "dtype"),
                (int) integer(n, "threads"), integer(n, "trainable_params"), integer(n, "base_weight_bytes"),
                integer(n, "optimizer_state_bytes"), number(n, "tokens_per_step"), (int) integer(n, "warmup_steps"),
                doubles(n, "step_times_s"), doubles(n, "train_losses"), optionalDouble(n, "eval_loss_initial"),
                optionalDouble(n, "eval_loss"), integer(n, "rss_after_load_bytes"), integer(n, "peak_rss_load_bytes"),
                n.path("peak_rss_train_bytes").isIntegralNumber()
                        ? OptionalLong.of(n.get("peak_rss_train_bytes").asLong()) : OptionalLong.empty(),
                integer(n, "peak_rss_bytes"));
    }

    /**
     * Null when this measurement is of {@code spec}'s configuration (model, method, activation checkpointing), else
     * what differs: a run that ignored a setting must not be reported under it.
     */
    public String mismatch(BenchSpec spec) {
        List<String> differ = new ArrayList<>();
        if (!model.equals(spec.model().name())) {
            differ.add("model " + model + " (asked " + spec.model().name() + ")");
        }
        if (!method.equals(spec.method())) {
            differ.add("method " + method + " (asked " + spec.method() + ")");
        }
        if (activationCheckpointing != spec.activationCheckpointing()) {
            differ.add("activation_checkpointing " + activationCheckpointing + " (asked "
                    + spec.activationCheckpointing() + ")");
        }
        return differ.isEmpty() ? null : tool + " measured " + String.join(", ", differ);
    }

    private static JsonNode field(JsonNode n, String key) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            throw new IllegalArgumentException("run result lacks \"" + key + "\"");
        }
        return v;
    }

    private static String text(JsonNode n, String key) {
        return field(n, key).asText();
    }

    private static boolean bool(JsonNode n, String key) {
        JsonNode v = field(n, key);
        if (!v.isBoolean()) {
            throw new IllegalArgumentException("run result field \"" + key + "\" is not a boolean: " + v);
        }
        return v.asBoolean();
    }

    private static long integer(JsonNode n, String key) {
        JsonNode v = field(n, key);
        if (!v.isIntegralNumber()) {
            throw new IllegalArgumentException("run result field \"" + key + "\" is not an integer: " + v);
        }
        return v.asLong();
    }

    private static double number(JsonNode n, String key) {
        JsonNode v = field(n, key);
        if (!v.isNumber()) {
            throw new IllegalArgumentException("run result field \"" + key + "\" is not a number: " + v);
        }
        return v.asDouble();
    }

    private static OptionalDouble optionalDouble(JsonNode n, String key) {
        JsonNode v = n.get(key);
        return v == null || !v.isNumber() ? OptionalDouble.empty() : OptionalDouble.of(v.asDouble());
    }

    private static double[] doubles(JsonNode n, String key) {
        JsonNode v = field(n, key);
        if (!v.isArray() || v.isEmpty()) {
            throw new IllegalArgumentException("run result field \"" + key + "\" must be a non-empty array");
        }
        double[] out = new double[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i).asDouble();
        }
        return out;
    }
}
