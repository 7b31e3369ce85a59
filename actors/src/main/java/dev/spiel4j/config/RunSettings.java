package dev.spiel4j.config;

import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigOrigin;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueFactory;
import com.typesafe.config.ConfigValueType;
import dev.spiel4j.hub.HubClient;
import dev.spiel4j.hub.HubLocation;
import dev.spiel4j.kafka.CheckpointPublisher;
import dev.spiel4j.peft.registry.MethodRegistry;
import dev.spiel4j.kafka.ProducerSettings;
import dev.spiel4j.kafka.Topics;
import dev.spiel4j.train.DeviceSetting;

/**
 * The typed, validated {@code spiel4j} section of a run's configuration (see {@code reference.conf} for
 * what each setting means). Every invalid value is refused with a {@link ConfigException} that names the
 * key and where it was set; unknown keys (typos) are refused too.
 */
public record RunSettings(Run run, Model model, Data data, Method method, Optimizer optimizer, Schedule schedule,
                          Train train, Batch batch, Eval eval, Checkpoint checkpoint, Kafka kafka, DeviceSetting device,
                          Supervision supervision, Cluster cluster, Config source) {

    /** Root of every spiel4j setting. */
    public static final String ROOT = "spiel4j";

    private static final Pattern ID = Pattern.compile("[A-Za-z0-9._-]{1,128}");
    private static final Set<String> FORMATS =
            Set.of("auto", "text", "alpaca", "prompt-response", "messages", "question-answer");
    private static final Set<String> TARGETS = Set.of("q", "k", "v", "o", "gate", "up", "down");
    /** The settings that may name an {@code hf://} location (see {@link #resolveHubLocations}). */
    private static final List<String> HUB_KEYS = List.of("model.path", "data.train", "eval.data");

    /** @param id never empty: generated from the start time when the configuration leaves it empty */
    public record Run(String id, Path dir, long seed) {
        /** This run's directory. */
        public Path runDir() {
            return dir.resolve(id);
        }
    }

    /**
     * @param computeType "float32" or "float16"
     * @param quantize    "none" or "nf4": how the block linears are stored
     */
    public record Model(Path path, String computeType, String quantize) {
    }

    public enum Source { FILE, KAFKA }

    public record Data(Source source, Path train, String format, int seqLen, boolean truncate, boolean shuffle) {
    }

    /** Exactly one of the three is non-zero for the sparse methods. */
    public record Budget(double density, long numDeltas, int matchLoraRank) {
    }

    public record Lora(int rank, double alpha, double dropout) {
    }

    public record Method(String name, Budget budget, List<String> targets, int reselectionInterval,
                         int selectionSteps, double replaceFraction, String replaceSchedule, Lora lora) {
        public boolean sparse() {
            return MethodRegistry.get(name).writesDeltas();
        }
    }

    public record Optimizer(double lr, double weightDecay, double beta1, double beta2, double eps,
                            double gradClip) {
    }

    /** @param steps 0 = unbounded; @param epochs 0 = use steps */
    public record Schedule(long steps, int epochs, double warmupFraction, String decay) {
    }

    /** @param activationCheckpointing recompute each block's forward pass in its backward segment */
    /**
     * @param initFrom a sparse fine-tuning (a spiel4j file or checkpoint delta, or an SFT adapter such as the paper's
     *                 fork saves) that a SpIEL run starts from instead of random indices; empty: none
     */
    public record Train(boolean activationCheckpointing, Optional<Path> initFrom) {
    }

    public record Batch(int size, int microBatches) {
    }

    public record Eval(int interval, Optional<Path> data, int holdoutExamples, List<Path> multipleChoice,
                       int maxExamples) {
    }

    public record Checkpoint(int interval, int keep, int chunkSize) {
    }

    /** @param bootstrapServers empty = start the embedded broker */
    public record Kafka(String bootstrapServers, String topicPrefix, int partitions, short replicationFactor,
                        int embeddedPort, Duration outageAfter, Duration deliveryTimeout, Duration minBackoff,
                        Duration maxBackoff, long bufferSize) {
        public boolean embedded() {
            return bootstrapServers.isEmpty();
        }

        public Topics topics() {
            return Topics.withPrefix(topicPrefix);
        }
    }

    /**
     * @param maxRestartsWithoutProgress restarts of a failed trainer allowed while the run makes no progress (no
     *                                   checkpoint newer than the one the restarts resume from); one more failure
     *                                   ends the run FAILED
     */
    public record Supervision(int maxRestartsWithoutProgress) {
    }

    /**
     * Data-parallel training on a Pekko Cluster (README, "Scale-out").
     *
     * @param workers          gradient workers the run waits for; 0 = train in this process
     * @param host             the address this node's cluster transport binds and advertises
     * @param port             its port; 0 = any free port
     * @param checksumInterval every this many steps each worker's state digest is compared with the coordinator's
     * @param stepTimeout      a worker that takes longer for its part of a step counts as lost
     * @param joinTimeout      how long a step waits for a worker when none is there before the run fails
     * @param takeoverWait     how long a node that starts hosting the run waits for another process to release the
     *                         run's embedded broker (a lost coordinator that is still alive, until it notices)
     * @param killWorkerAtStep chaos: SIGKILL the worker given step K's last micro-batch when it receives them; 0 = never
     */
    public record Cluster(int workers, String host, int port, int checksumInterval, Duration stepTimeout,
                          Duration joinTimeout, Duration takeoverWait, int killWorkerAtStep) {
        public boolean enabled() {
            return workers > 0;
        }
    }

    /**
     * This run's {@code spiel4j} settings as HOCON, for a process that must train with exactly them (a cluster's
     * gradient worker reads them with {@link #fromRendered}), with {@code model.path} absolute: a worker started in
     * another directory finds the same file (a worker on another machine needs it at the same path).
     */
    public String rendered() {
        return source.withValue(ROOT + ".model.path", ConfigValueFactory.fromAnyRef(
                        model.path().toAbsolutePath().normalize().toString()))
                .root().withOnlyKey(ROOT).render(com.typesafe.config.ConfigRenderOptions.concise());
    }

    /**
     * The settings {@link #rendered()} describes, over this process's reference configuration, with {@code device}
     * in place of theirs where given (each worker of a cluster has its own GPU).
     */
    public static RunSettings fromRendered(String hocon, Optional<String> device) {
        Config config = ConfigFactory.parseString(hocon);
        if (device.isPresent()) {
            config = config.withValue(ROOT + ".device", ConfigValueFactory.fromAnyRef(device.get()));
        }
        return from(config.withFallback(ConfigFactory.defaultReference()).resolve());
    }

    /**
     * Publisher settings for this run's Kafka: records large enough for a checkpoint chunk (at least 1 MiB),
     * the configured timeouts, backoff and buffer.
     *
     * @param bootstrapServers the external cluster's or the embedded broker's address
     */
    public ProducerSettings producerSettings(String bootstrapServers, String clientId) {
        int maxRecord = Math.max(1 << 20, CheckpointPublisher.recordBytesFor(checkpoint.chunkSize()));
        return ProducerSettings.defaults(bootstrapServers, clientId)
                .withOutageAfter(kafka.outageAfter())
                .withDeliveryTimeout(kafka.deliveryTimeout())
                .withBackoff(kafka.minBackoff(), kafka.maxBackoff())
                .withBuffer(Math.max(kafka.bufferSize(), maxRecord), maxRecord);
    }

    /**
     * The full configuration of a run: {@code overrides} over {@code file} (may be null) over every
     * {@code reference.conf} on the class path (spiel4j's and Pekko's), resolved. Give it to the actor
     * system as is, and to {@link #from(Config)}.
     *
     * @param overrides {@code key=value} strings; keys not starting with "spiel4j." or "pekko." are taken as
     *                  relative to "spiel4j." (so {@code batch.size=4} works)
     */
    public static Config load(Path file, List<String> overrides) {
        Config layered = ConfigFactory.empty();
        for (String override : overrides) {
            int eq = override.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("setting override '" + override + "' is not key=value");
            }
            String key = override.substring(0, eq).trim();
            if (!key.startsWith(ROOT + ".") && !key.startsWith("pekko.")) {
                key = ROOT + "." + key;
            }
            Config one = ConfigFactory.empty(ROOT + " command line '" + override + "'")
                    .withValue(key, overrideValue(override.substring(eq + 1).trim()));
            layered = one.withFallback(layered);
        }
        if (file != null) {
            layered = layered.withFallback(ConfigFactory.parseFile(file.toFile(),
                    ConfigParseOptions.defaults().setAllowMissing(false)));
        }
        return layered.withFallback(ConfigFactory.defaultReference()).resolve();
    }

    /**
     * A command-line value as HOCON (numbers, booleans, lists, quoted strings), or, when it does not parse
     * as HOCON (e.g. {@code gpu:1}, {@code host:9092}), as the plain string.
     */
    private static ConfigValue overrideValue(String raw) {
        try {
            return ConfigFactory.parseString("value = " + raw).getValue("value");
        } catch (ConfigException e) {
            return ConfigValueFactory.fromAnyRef(raw, "command line");
        }
    }

    /**
     * The configuration with every {@code hf://} location among {@link #HUB_KEYS} replaced by its local copy in the
     * Hub cache ({@link HubClient#resolve(String)}: downloaded when missing), so that {@link #from(Config)} sees
     * local paths only; other values are kept as they are. A malformed location is a {@link ConfigException}
     * naming the key; a failed download a {@link dev.spiel4j.hub.HubException} naming the location.
     */
    public static Config resolveHubLocations(Config config, HubClient hub) {
        Config resolved = config;
        for (String key : HUB_KEYS) {
            String full = ROOT + "." + key;
            if (!config.hasPath(full) || config.getValue(full).valueType() != ConfigValueType.STRING
                    || !HubLocation.isHub(config.getString(full))) {
                continue;
            }
            String location = config.getString(full);
            ConfigOrigin origin = config.getValue(full).origin();
            Path local;
            try {
                local = hub.resolve(location);
            } catch (IllegalArgumentException e) {
                throw new ConfigException.BadValue(origin, full, e.getMessage(), e);
            }
            resolved = resolved.withValue(full, ConfigValueFactory.fromAnyRef(local.toString(),
                    "resolved from " + location + " (" + origin.description() + ")"));
        }
        return resolved;
    }

    /** Reads and validates the {@code spiel4j} section of a resolved configuration. */
    public static RunSettings from(Config config) {
        Config reference = ConfigFactory.defaultReference();
        config.checkValid(reference, ROOT);
        rejectUnknownKeys(config, reference);
        Reader r = new Reader(config);
        Method method = r.method();
        return new RunSettings(
                new Run(r.runId("run.id"), r.path("run.dir"), r.longAtLeast("run.seed", Long.MIN_VALUE)),
                new Model(r.path("model.path"), r.oneOf("model.compute-type", Set.of("float32", "float16")),
                        r.oneOf("model.quantize", Set.of("none", "nf4"))),
                new Data(Source.valueOf(r.oneOf("data.source", Set.of("file", "kafka")).toUpperCase()),
                        r.path("data.train"), r.oneOf("data.format", FORMATS), r.intAtLeast("data.seq-len", 2),
                        r.bool("data.truncate"), r.bool("data.shuffle")),
                method,
                new Optimizer(r.learningRate(method.name()), r.nonNegative("optimizer.weight-decay"),
                        r.fraction("optimizer.beta1"), r.fraction("optimizer.beta2"), r.positive("optimizer.eps"),
                        r.nonNegative("optimizer.grad-clip")),
                new Schedule(r.longAtLeast("schedule.steps", 0), r.intAtLeast("schedule.epochs", 0),
                        r.fraction("schedule.warmup-fraction"),
                        r.oneOf("schedule.decay", Set.of("linear", "cosine", "constant"))),
                new Train(r.bool("train.activation-checkpointing"), r.optionalPath("train.init-from")),
                new Batch(r.intAtLeast("batch.size", 1), r.intAtLeast("batch.micro-batches", 1)),
                new Eval(r.intAtLeast("eval.interval", 0), r.optionalPath("eval.data"),
                        r.intAtLeast("eval.holdout-examples", 0), r.paths("eval.multiple-choice"),
                        r.intAtLeast("eval.max-examples", 0)),
                new Checkpoint(r.intAtLeast("checkpoint.interval", 0), r.intAtLeast("checkpoint.keep", 0),
                        r.bytes("checkpoint.chunk-size", 1024, 16 << 20)),
                r.kafka(),
                r.device("device"),
                new Supervision(r.intAtLeast("supervision.max-restarts-without-progress", 0)),
                new Cluster(r.intAtLeast("cluster.workers", 0), r.host("cluster.host"),
                        r.intAtLeast("cluster.port", 0), r.intAtLeast("cluster.checksum-interval", 1),
                        r.positiveDuration("cluster.step-timeout"), r.positiveDuration("cluster.join-timeout"),
                        r.positiveDuration("cluster.takeover-wait"),
                        r.intAtLeast("chaos.kill-worker-at-step", 0)),
                config);
    }


    private static void rejectUnknownKeys(Config config, Config reference) {
        for (Map.Entry<String, ConfigValue> e : config.getConfig(ROOT).entrySet()) {
            String key = ROOT + "." + e.getKey();
            if (!key.startsWith(ROOT + ".trainer-dispatcher.") && !reference.hasPathOrNull(key)) {
                throw new ConfigException.BadPath(e.getValue().origin(), key,
                        "unknown setting (see reference.conf for the valid keys)");
            }
        }
    }

    /**
     * Reads typed values by their key under {@code spiel4j}, so that every error, the library's type errors
     * included, names the full key.
     */
    private static final class Reader {
        private final Config c;

        Reader(Config config) {
            this.c = config;
        }

        private static String full(String key) {
            return ROOT + "." + key;
        }

        private ConfigException bad(String key, String problem) {
            String full = full(key);
            return new ConfigException.BadValue(c.hasPath(full) ? c.getValue(full).origin() : c.origin(), full,
                    problem);
        }

        String runId(String key) {
            String id = c.getString(full(key));
            if (id.isEmpty()) {
                return "run-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
            }
            if (!ID.matcher(id).matches()) {
                throw bad(key, "'" + id + "' must be 1-128 characters from [A-Za-z0-9._-]");
            }
            return id;
        }

        boolean bool(String key) {
            return c.getBoolean(full(key));
        }

        Path path(String key) {
            String value = c.getString(full(key));
            if (value.isBlank()) {
                throw bad(key, "must name a file or directory");
            }
            return local(key, value);
        }

        Optional<Path> optionalPath(String key) {
            String value = c.getString(full(key));
            return value.isBlank() ? Optional.empty() : Optional.of(local(key, value));
        }

        /** {@code hf://} locations become local paths in {@link #resolveHubLocations}, before this. */
        private Path local(String key, String value) {
            if (HubLocation.isHub(value)) {
                throw bad(key, "'" + value + "' is a Hugging Face Hub location; RunSettings.resolveHubLocations"
                        + " must turn it into its local copy first");
            }
            return Path.of(value);
        }

        List<Path> paths(String key) {
            List<Path> paths = new ArrayList<>();
            for (String value : c.getStringList(full(key))) {
                if (value.isBlank()) {
                    throw bad(key, "contains an empty path");
                }
                paths.add(Path.of(value));
            }
            return List.copyOf(paths);
        }

        String oneOf(String key, Set<String> allowed) {
            String value = c.getString(full(key));
            if (!allowed.contains(value)) {
                throw bad(key, "'" + value + "' is not one of " + new java.util.TreeSet<>(allowed));
            }
            return value;
        }

        String host(String key) {
            String value = c.getString(full(key)).trim();
            if (value.isEmpty() || value.contains(":") && !value.contains("[")) {
                throw new ConfigException.BadValue(c.getValue(full(key)).origin(), full(key),
                        "'" + value + "' is not a host name or address (no port: that is cluster.port)");
            }
            return value;
        }

        int intAtLeast(String key, int min) {
            int value = c.getInt(full(key));
            if (value < min) {
                throw bad(key, value + " must be >= " + min);
            }
            return value;
        }

        long longAtLeast(String key, long min) {
            long value = c.getLong(full(key));
            if (value < min) {
                throw bad(key, value + " must be >= " + min);
            }
            return value;
        }

        double positive(String key) {
            double value = c.getDouble(full(key));
            if (!(value > 0) || Double.isInfinite(value)) {
                throw bad(key, value + " must be a positive number");
            }
            return value;
        }

        double nonNegative(String key) {
            double value = c.getDouble(full(key));
            if (!(value >= 0) || Double.isInfinite(value)) {
                throw bad(key, value + " must be >= 0");
            }
            return value;
        }

        double fraction(String key) {
            double value = c.getDouble(full(key));
            if (!(value >= 0 && value < 1)) {
                throw bad(key, value + " must be in [0, 1)");
            }
            return value;
        }

        int bytes(String key, long min, long max) {
            long value = c.getBytes(full(key));
            if (value < min || value > max) {
                throw bad(key, value + " bytes must be between " + min + " and " + max);
            }
            return (int) value;
        }

        Duration positiveDuration(String key) {
            Duration value = c.getDuration(full(key));
            if (value.isNegative() || value.isZero()) {
                throw bad(key, value + " must be positive");
            }
            return value;
        }

        /** {@code optimizer.lr}, or with {@code auto} the method's entry in {@code optimizer.lr-by-method}. */
        double learningRate(String methodName) {
            for (String method : c.getObject(full("optimizer.lr-by-method")).keySet()) {
                positive("optimizer.lr-by-method." + method);
            }
            ConfigValue lr = c.getValue(full("optimizer.lr"));
            if (lr.valueType() == ConfigValueType.STRING && "auto".equals(lr.unwrapped())) {
                String key = "optimizer.lr-by-method." + methodName;
                if (!c.hasPath(full(key))) {
                    throw bad("optimizer.lr-by-method", "has no rate for method " + methodName
                            + "; set optimizer.lr or " + key);
                }
                return positive(key);
            }
            return positive("optimizer.lr");
        }

        Method method() {
            String name = oneOf("method.name", new LinkedHashSet<>(MethodRegistry.names()));
            Budget budget = new Budget(fraction("method.budget.density"),
                    longAtLeast("method.budget.num-deltas", 0), intAtLeast("method.budget.match-lora-rank", 0));
            int set = (budget.density() > 0 ? 1 : 0) + (budget.numDeltas() > 0 ? 1 : 0)
                    + (budget.matchLoraRank() > 0 ? 1 : 0);
            if (MethodRegistry.get(name).writesDeltas() && set != 1) {
                throw bad("method.budget", "set exactly one of density, num-deltas, match-lora-rank for " + name
                        + " (" + set + " are set)");
            }
            List<String> targets = c.getStringList(full("method.targets"));
            if (targets.isEmpty() || !TARGETS.containsAll(targets) || Set.copyOf(targets).size() != targets.size()) {
                throw bad("method.targets", targets + " must be distinct names from " + new java.util.TreeSet<>(TARGETS));
            }
            int interval = intAtLeast("method.reselection-interval", 1);
            int phase = intAtLeast("method.selection-steps", 1);
            if (phase > interval) {
                throw bad("method.selection-steps", phase + " must not exceed method.reselection-interval ("
                        + interval + ")");
            }
            double xi = c.getDouble(full("method.replace-fraction"));
            if (!(xi > 0 && xi <= 1)) {
                throw bad("method.replace-fraction", xi + " must be in (0, 1]");
            }
            Lora lora = new Lora(intAtLeast("method.lora.rank", 1), positive("method.lora.alpha"),
                    fraction("method.lora.dropout"));
            return new Method(name, budget, List.copyOf(targets), interval, phase, xi,
                    oneOf("method.replace-schedule", Set.of("linear", "cosine")), lora);
        }

        Kafka kafka() {
            String bootstrap = c.getString(full("kafka.bootstrap-servers")).trim();
            String prefix = c.getString(full("kafka.topic-prefix"));
            try {
                Topics.withPrefix(prefix);
            } catch (IllegalArgumentException e) {
                throw bad("kafka.topic-prefix", e.getMessage());
            }
            int port = intAtLeast("kafka.embedded-port", 0);
            if (port > 65535) {
                throw bad("kafka.embedded-port", port + " must be <= 65535");
            }
            int replication = intAtLeast("kafka.replication-factor", 1);
            if (replication > Short.MAX_VALUE) {
                throw bad("kafka.replication-factor", replication + " is too large");
            }
            Duration min = positiveDuration("kafka.min-backoff");
            Duration max = positiveDuration("kafka.max-backoff");
            if (max.compareTo(min) < 0) {
                throw bad("kafka.max-backoff", max + " is shorter than kafka.min-backoff " + min);
            }
            Duration delivery = positiveDuration("kafka.delivery-timeout");
            if (delivery.compareTo(ProducerSettings.MIN_DELIVERY_TIMEOUT) < 0) {
                throw bad("kafka.delivery-timeout", delivery + " is shorter than " + ProducerSettings.MIN_DELIVERY_TIMEOUT
                        + " (Kafka's request timeout and linger must fit in it)");
            }
            return new Kafka(bootstrap, prefix, intAtLeast("kafka.partitions", 1), (short) replication, port,
                    positiveDuration("kafka.outage-after"), delivery, min, max,
                    bytes("kafka.buffer-size", 1 << 20, Integer.MAX_VALUE));
        }

        DeviceSetting device(String key) {
            try {
                return DeviceSetting.parse(c.getString(full(key)));
            } catch (IllegalArgumentException e) {
                throw bad(key, e.getMessage());
            }
        }
    }
}
