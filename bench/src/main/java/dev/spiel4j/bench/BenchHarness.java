package dev.spiel4j.bench;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * Runs a {@link BenchPlan}: every configuration in a fresh JVM ({@link BenchChild}), the Python peer beside the
 * LoRA and full configurations, the scaling sweeps and the minimum-memory bisections, and collects a
 * {@link BenchReport}. A configuration that fails becomes a row of the report's failures, never an exception; so
 * does one whose result reports another configuration than its spec asked for (e.g. activation checkpointing off).
 */
public final class BenchHarness {

    /**
     * @param workDir            where spec files go (one per configuration)
     * @param childTimeout       limit per child run and per peer run
     * @param childHeap          the child JVM's -Xmx (explicit, so a memory cap does not resize the heap)
     * @param peer               the Python peer, or null to skip it
     * @param toleranceBytes     minimum-memory bisection tolerance
     * @param maxProbes          minimum-memory probes at most per configuration
     * @param forcePolling       enforce caps by polling RSS even where cgroups are writable
     * @param childEnv           environment variables set for every spiel4j child (e.g. {@code MALLOC_ARENA_MAX}),
     *                           to measure how much of a figure belongs to the allocator rather than the engine
     * @param memoryEnv          when not empty, every configuration (the peer's too) runs a second time with these
     *                           variables added, and its memory figures come from that run, its step times from the
     *                           first; {@link #LIVE_MEMORY} is the default
     * @param timedRuns          how many times each configuration's steps are timed, in as many rounds over all
     *                           configurations; its step times are those of every timed run together
     */
    public record Options(Path workDir, Duration childTimeout, String childHeap, PythonPeer peer,
                          long toleranceBytes, int maxProbes, boolean forcePolling, Map<String, String> childEnv,
                          Map<String, String> memoryEnv, int timedRuns) {
        public Options {
            childEnv = Map.copyOf(childEnv);
            memoryEnv = Map.copyOf(memoryEnv);
            if (timedRuns < 1) {
                throw new IllegalArgumentException("timed runs per configuration must be at least 1, got "
                        + timedRuns);
            }
        }
    }

    /**
     * The memory run's environment. glibc serves every allocation of 64 KiB or more with its own mapping and returns
     * it to the system when it is freed: under the default (a threshold that rises to 32 MiB as large blocks are
     * freed) the C heap keeps freed layer-sized blocks and their fragments, and RSS shows the allocator's history
     * rather than what a method holds (on llama-100M it put SpIEL-AG at 1.1-1.2x LoRA, against 0.85x here). And the
     * child collects Java garbage after every step ({@link BenchChild#COLLECT_BETWEEN_STEPS}). Both cost time (every
     * large block is mapped and zeroed afresh: LoRA's step 0.54 -> 0.97 s), so steps are timed in the other run.
     */
    public static final Map<String, String> LIVE_MEMORY = Map.of("MALLOC_MMAP_THRESHOLD_", "65536",
            BenchChild.COLLECT_BETWEEN_STEPS, "1");

    private final Options options;
    private final Consumer<String> log;
    /** Outcomes by (spec, environment). */
    private final Map<List<Object>, ChildRunner.Outcome> outcomes = new LinkedHashMap<>();
    private final Map<BenchSpec, Path> specFiles = new LinkedHashMap<>();
    private int specCounter;

    /** @param log receives one line per step of progress (configuration started, finished, failed) */
    public BenchHarness(Options options, Consumer<String> log) {
        this.options = options;
        this.log = log;
    }

    public BenchReport run(BenchPlan plan) {
        List<BenchSpec> peerSpecs = options.peer() == null ? List.of() : plan.configs().stream()
                .filter(s -> BenchSpec.PEER_METHODS.contains(s.method()) && !s.dtype().equals("nf4")).toList();
        // Step times first, in rounds: each round times every configuration (the peer's included) once, so that a
        // machine that slows down for a while slows every configuration's runs alike instead of one configuration's
        // only, and the ratios the targets read compare runs that were side by side.
        Map<BenchSpec, Measured> timed = new LinkedHashMap<>();
        Map<BenchSpec, PeerOutcome> peerTimed = new LinkedHashMap<>();
        for (int run = 1; run <= options.timedRuns(); run++) {
            for (BenchSpec s : plan.configs()) {
                Measured sofar = timed.get(s);
                if (sofar == null || sofar.failureReason() == null) {
                    timed.put(s, pool(sofar, timedRun(s, run), run));
                }
            }
            for (BenchSpec s : peerSpecs) {
                PeerOutcome sofar = peerTimed.get(s);
                if (sofar == null || sofar instanceof PeerOutcome.Ran) {
                    log.accept("peer: " + label(s) + timedRunLabel(run));
                    peerTimed.put(s, poolPeer(sofar, options.peer().run(s, specFile(s), options.childTimeout(),
                            Map.of()), run));
                }
            }
        }

        List<BenchReport.Run> runs = new ArrayList<>();
        List<BenchReport.Failure> failures = new ArrayList<>();
        for (BenchSpec s : plan.configs()) {
            Measured o = withMemory(s, timed.get(s));
            if (o.failureReason() != null) {
                failures.add(new BenchReport.Failure(s.model().name(), s.method(), s.activationCheckpointing(),
                        o.failureReason()));
                continue;
            }
            RunMeasurement m = o.measurement();
            String mismatch = m.mismatch(s);
            if (mismatch == null) {
                runs.add(new BenchReport.Run(s.model().name(), s.method(), s.activationCheckpointing(), m));
            } else {
                failures.add(new BenchReport.Failure(s.model().name(), s.method(), s.activationCheckpointing(),
                        mismatch));
            }
        }

        List<BenchReport.Run> peerRuns = new ArrayList<>();
        List<PeerOutcome> peerOutcomes = new ArrayList<>();
        for (BenchSpec s : peerSpecs) {
            PeerOutcome o = peerTimed.get(s);
            if (o instanceof PeerOutcome.Ran r && !options.memoryEnv().isEmpty()) {
                log.accept("peer: " + label(s) + " " + new TreeMap<>(options.memoryEnv()));
                PeerOutcome memory = options.peer().run(s, specFile(s), options.childTimeout(), options.memoryEnv());
                o = memory instanceof PeerOutcome.Ran rm
                        ? new PeerOutcome.Ran(r.measurement().withMemoryOf(rm.measurement()))
                        : new PeerOutcome.CouldNotRun("memory run: " + ((PeerOutcome.CouldNotRun) memory).reason());
            }
            peerOutcomes.add(o);
            if (o instanceof PeerOutcome.Ran r) {
                peerRuns.add(new BenchReport.Run(s.model().name(), s.method(), s.activationCheckpointing(),
                        r.measurement()));
            } else {
                log.accept("  " + ((PeerOutcome.CouldNotRun) o).reason());
            }
        }
        String peerStatus = options.peer() == null ? PythonPeer.REASON_PREFIX + "skipped (no peer requested)"
                : BenchReport.peerStatus(peerOutcomes);

        List<BenchReport.Sweep> sweeps = new ArrayList<>();
        for (BenchPlan.Sweep sw : plan.sweeps()) {
            List<String> labels = new ArrayList<>();
            List<double[]> points = new ArrayList<>();
            for (int i = 0; i < sw.specs().size(); i++) {
                List<BenchSpec> measured = sw.baselines().isEmpty() ? List.of(sw.specs().get(i))
                        : List.of(sw.specs().get(i), sw.baselines().get(i));
                double y = 0;
                boolean ok = true;
                for (int j = 0; j < measured.size() && ok; j++) {
                    BenchSpec s = measured.get(j);
                    Measured o = measure(s);
                    if (o.failureReason() == null) {
                        double mb = o.measurement().overheadBytes() / (1024.0 * 1024.0);
                        y += j == 0 ? mb : -mb;
                    } else {
                        ok = false;
                        failures.add(new BenchReport.Failure(s.model().name(), s.method() + " (" + sw.name() + ", "
                                + sw.labels().get(i) + ")", s.activationCheckpointing(), o.failureReason()));
                    }
                }
                if (ok) {
                    labels.add(sw.labels().get(i));
                    points.add(new double[]{sw.x()[i], y});
                }
            }
            sweeps.add(new BenchReport.Sweep(sw.name(), sw.xLabel(),
                    sw.baselines().isEmpty() ? "overhead MB" : "overhead above baseline MB", labels,
                    points.stream().mapToDouble(p -> p[0]).toArray(), points.stream().mapToDouble(p -> p[1]).toArray()));
        }

        List<BenchReport.MinimumMemory> minimum = new ArrayList<>();
        for (BenchSpec s : plan.minimumMemory()) {
            minimum.add(minimumMemory(s));
        }
        String memorySource = options.memoryEnv().isEmpty() ? "memory figures from the timed runs"
                : "memory figures from a second run of each configuration with " + new TreeMap<>(options.memoryEnv());
        String timing = options.timedRuns() == 1 ? "step times from one timed run of each configuration"
                : "step times from " + options.timedRuns() + " timed runs of each configuration, in "
                + options.timedRuns() + " rounds over all of them";
        return new BenchReport(plan.suite(), plan.command(),
                BenchReport.describeMachine() + "; " + timing + "; " + memorySource,
                plan.targetModel(), runs,
                failures, peerRuns, peerStatus, sweeps, minimum);
    }

    /**
     * Bisects the smallest cap at which {@code spec}'s steps complete. The bracket comes from an uncapped run:
     * the RSS with the base model loaded (below which nothing can train) up to 1.5 x the measured peak plus
     * 64 MiB; without a successful uncapped run there is nothing to bracket and the result says so.
     */
    BenchReport.MinimumMemory minimumMemory(BenchSpec spec) {
        ChildRunner.Outcome base = runChild(spec, options.childEnv(), 1);
        MinimumMemorySearch search = new MinimumMemorySearch(options.toleranceBytes(), options.maxProbes());
        ChildRunner.Enforcement enforcement = options.forcePolling() ? ChildRunner.Enforcement.POLLING
                : ChildRunner.Enforcement.CGROUP_V1;
        if (!base.succeeded()) {
            MinimumMemorySearch.Result none = new MinimumMemorySearch.Result(OptionalLong.empty(), OptionalLong.empty(),
                    false, List.of());
            return new BenchReport.MinimumMemory(spec.model().name(), spec.method(), spec.steps(), none, enforcement);
        }
        RunMeasurement m = RunMeasurement.fromJson(base.result().orElseThrow());
        long low = m.rssAfterLoadBytes() / 2;
        long high = m.peakRssBytes() + m.peakRssBytes() / 2 + (64L << 20);
        List<String> command = withEnvironment(options.childEnv(),
                BenchChild.command(spec, specFile(spec), options.childHeap()));
        List<ChildRunner.Enforcement> used = new ArrayList<>();
        log.accept("minimum memory: " + label(spec));
        MinimumMemorySearch.Result r = search.search(low, high, cap -> {
            ChildRunner.Outcome o = ChildRunner.run(command, options.childTimeout(), OptionalLong.of(cap),
                    options.forcePolling());
            used.add(o.enforcement());
            log.accept(String.format(Locale.ROOT, "  cap %d MiB: %s", cap >> 20, o.succeeded() ? "completed" : o.failureReason()));
            return o.succeeded();
        });
        return new BenchReport.MinimumMemory(spec.model().name(), spec.method(), spec.steps(), r,
                used.isEmpty() ? enforcement : used.get(used.size() - 1));
    }

    /** {@code command} run through {@code env NAME=VALUE ...} when {@code env} is not empty. */
    static List<String> withEnvironment(Map<String, String> env, List<String> command) {
        if (env.isEmpty()) {
            return command;
        }
        List<String> out = new ArrayList<>(List.of("env"));
        new TreeMap<>(env).forEach((k, v) -> out.add(k + "=" + v));
        out.addAll(command);
        return out;
    }

    /** A configuration's measurement, or why there is none. */
    record Measured(RunMeasurement measurement, String failureReason) {
    }

    /**
     * Step times from a run with the children's environment; memory from a second run with {@link Options#memoryEnv()}
     * added, when there is one.
     */
    private Measured measure(BenchSpec spec) {
        return withMemory(spec, timedRun(spec, 1));
    }

    /** The {@code run}-th timed run of {@code spec}. */
    private Measured timedRun(BenchSpec spec, int run) {
        ChildRunner.Outcome o = runChild(spec, options.childEnv(), run);
        return o.succeeded() ? new Measured(RunMeasurement.fromJson(o.result().orElseThrow()), null)
                : new Measured(null, o.failureReason());
    }

    /** {@code timed} with the memory figures of a memory run, when {@link Options#memoryEnv()} asks for one. */
    private Measured withMemory(BenchSpec spec, Measured timed) {
        if (timed.failureReason() != null || options.memoryEnv().isEmpty()) {
            return timed;
        }
        Map<String, String> env = new LinkedHashMap<>(options.childEnv());
        env.putAll(options.memoryEnv());
        ChildRunner.Outcome memory = runChild(spec, env, 1);
        return memory.succeeded()
                ? new Measured(timed.measurement().withMemoryOf(RunMeasurement.fromJson(memory.result().orElseThrow())), null)
                : new Measured(null, "memory run " + env + ": " + memory.failureReason());
    }

    /**
     * The timed runs so far with the {@code run}-th one added: their step times together, or why one failed. spiel4j
     * trains bit-reproducibly, so a timed run whose losses differ from the first one's is a failure, not a sample.
     */
    static Measured pool(Measured sofar, Measured next, int run) {
        if (next.failureReason() != null) {
            return new Measured(null, (run == 1 ? "" : "timed run " + run + ": ") + next.failureReason());
        }
        if (sofar == null) {
            return next;
        }
        if (!Arrays.equals(sofar.measurement().trainLosses(), next.measurement().trainLosses())) {
            return new Measured(null, "timed run " + run + " trained to other losses than the first one "
                    + Arrays.toString(next.measurement().trainLosses()) + " against "
                    + Arrays.toString(sofar.measurement().trainLosses()) + ": the runs are not reproducible");
        }
        return new Measured(sofar.measurement().withStepTimesOf(next.measurement()), null);
    }

    /**
     * The peer's timed runs so far with the {@code run}-th one added. PyTorch does not promise bit-identical runs,
     * so the peer's losses are not compared.
     */
    private static PeerOutcome poolPeer(PeerOutcome sofar, PeerOutcome next, int run) {
        if (next instanceof PeerOutcome.CouldNotRun c) {
            return run == 1 ? c : new PeerOutcome.CouldNotRun("timed run " + run + ": " + c.reason());
        }
        RunMeasurement m = ((PeerOutcome.Ran) next).measurement();
        return sofar == null ? next : new PeerOutcome.Ran(((PeerOutcome.Ran) sofar).measurement().withStepTimesOf(m));
    }

    private String timedRunLabel(int run) {
        return options.timedRuns() == 1 ? "" : " (timed run " + run + " of " + options.timedRuns() + ")";
    }

    /**
     * Runs a configuration in a fresh JVM with {@code env}, as its {@code run}-th run in that environment; later
     * requests for the same three reuse the outcome (a sweep point that is also a configuration runs once).
     */
    private ChildRunner.Outcome runChild(BenchSpec spec, Map<String, String> env, int run) {
        List<Object> key = List.of(spec, Map.copyOf(env), run);
        ChildRunner.Outcome known = outcomes.get(key);
        if (known != null) {
            return known;
        }
        log.accept("run: " + label(spec) + (env.isEmpty() ? "" : " " + new TreeMap<>(env))
                + (env.equals(options.childEnv()) ? timedRunLabel(run) : ""));
        ChildRunner.Outcome o = ChildRunner.run(withEnvironment(env,
                        BenchChild.command(spec, specFile(spec), options.childHeap())),
                options.childTimeout());
        log.accept("  " + (o.succeeded() ? String.format(Locale.ROOT, "done in %.1f s", o.wallSeconds()) : o.failureReason()));
        outcomes.put(key, o);
        return o;
    }

    private Path specFile(BenchSpec spec) {
        return specFiles.computeIfAbsent(spec, s -> {
            Path f = options.workDir().resolve(String.format(Locale.ROOT, "spec-%03d-%s-%s%s.json", ++specCounter,
                    s.model().name().replaceAll("[^A-Za-z0-9]+", "_"), s.method(),
                    s.activationCheckpointing() ? "-ckpt" : ""));
            s.write(f);
            return f;
        });
    }

    private static String label(BenchSpec s) {
        return s.model().name() + " / " + s.method() + " (" + s.dtype() + ", rank " + s.budget().loraRank()
                + ", deltas " + s.budget().deltas() + ", " + s.steps() + " steps"
                + (s.activationCheckpointing() ? ", activation checkpointing" : "") + ")";
    }
}
