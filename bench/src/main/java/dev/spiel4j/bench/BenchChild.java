package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.data.Batch;
import dev.spiel4j.train.ProcMemory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/**
 * Entry point of one benchmark configuration in its own JVM: {@code java -cp <classpath>
 * dev.spiel4j.bench.BenchChild SPEC.json}. It reads the {@link BenchSpec} and its {@link BatchFile}, runs the
 * {@link BenchWorkload} the spec names, and prints ONE JSON object as the last line of stdout (exit 0), with
 * the same keys as the Python peer (parsed by {@link RunMeasurement#fromJson}):
 * <pre>
 * {"status":"ok", "tool":"spiel4j", "model", "method", "activation_checkpointing", "dtype", "threads", "trainable_params", "base_weight_bytes",
 *  "optimizer_state_bytes", "tokens_per_step", "warmup_steps", "step_times_s":[...], "train_losses":[...],
 *  "eval_loss_initial", "eval_loss", "rss_after_load_bytes", "peak_rss_load_bytes", "peak_rss_train_bytes",
 *  "peak_rss_bytes"}
 * </pre>
 * or {@code {"status":"error","error":"..."}} (exit 1). Memory figures come from this process's
 * /proc/self/status: RSS after the base model is loaded, then the peak is reset so that the training peak is
 * measured on its own. With {@value #COLLECT_BETWEEN_STEPS} set in the environment (the harness's memory run) the JVM
 * collects garbage after every step, outside the timed part, so that the Java heap holds what is live: otherwise
 * its size follows the collector's heuristics within the 6 GiB it may take, and a method's host-side garbage counts as
 * its memory.
 */
final class BenchChild {
    private static final ObjectMapper JSON = new ObjectMapper();

    private BenchChild() {
    }

    public static void main(String[] args) {
        if (args.length != 1) {
            System.out.println(error("usage: BenchChild SPEC.json"));
            System.exit(2);
        }
        ObjectNode result;
        try {
            result = run(BenchSpec.read(Path.of(args[0])));
        } catch (Throwable e) {
            e.printStackTrace();
            System.out.flush();
            System.out.println(error(e.getClass().getSimpleName() + ": " + e.getMessage()));
            System.exit(1);
            return;
        }
        System.out.flush();
        System.out.println(result);
        System.exit(0);
    }

    /**
     * JVM options for a child running {@code spec}: an explicit heap (so the JVM does not size it from a memory
     * cap) with a 64 MB young generation, the engine's thread counts, DJL offline, and the common-pool parallelism stack.md asks for.
     */
    public static List<String> jvmOptions(BenchSpec spec, String maxHeap) {
        // A fixed, small young generation: otherwise a short run keeps touching fresh pages of a large committed
        // heap instead of collecting, and a method's host-side garbage shows up as "memory" (measured: 400-500 MB of
        // peak RSS on the 100M shape for SpIEL's host optimizer, none of it live).
        List<String> opts = new ArrayList<>(List.of("-Xmx" + maxHeap, "-Xmn64m", "-Xss4m", "-Dai.djl.offline=true",
                "-Dai.djl.pytorch.num_threads=" + spec.threads(), "-Dai.djl.pytorch.num_interop_threads=1",
                "-Djava.util.concurrent.ForkJoinPool.common.parallelism=4"));
        if (Runtime.version().feature() >= 24) {
            opts.add("--enable-native-access=ALL-UNNAMED"); // DJL's native access, see stack.md
        }
        String assets = System.getProperty("spiel4j.assets");
        if (assets != null) {
            opts.add("-Dspiel4j.assets=" + assets);
        }
        return opts;
    }

    /** The command that runs {@code specFile} in a fresh JVM with this JVM's class path. */
    public static List<String> command(BenchSpec spec, Path specFile, String maxHeap) {
        return ChildRunner.javaCommand(BenchChild.class.getName(), jvmOptions(spec, maxHeap),
                List.of(specFile.toAbsolutePath().toString()));
    }

    /**
     * RSS once the load's garbage is gone. Host copies of the weights go to the engine through Java direct buffers
     * (see {@code EngineArrays}) that only a garbage collection frees; left alone they count as "base", and when a
     * later collection frees them mid-training the RSS falls by up to the model's size and hides the method's own
     * memory (measured on llama-100M: 400 MB of them, freed at step 4 of SpIEL-AG's run).
     */
    static long settledRss() throws InterruptedException {
        long rss = rss();
        for (int round = 0; round < 20; round++) {
            System.gc();
            Thread.sleep(100); // the Cleaner thread frees the buffers after the collection
            long now = rss();
            if (round >= 2 && rss - now < (1L << 20)) {
                return now;
            }
            rss = now;
        }
        return rss;
    }

    private static long rss() {
        return ProcMemory.selfStatusBytes("VmRSS").orElseThrow(
                () -> new IllegalStateException("no VmRSS in /proc/self/status: memory cannot be measured here"));
    }

    /** Set in the environment: collect garbage after every step (see the class comment). */
    public static final String COLLECT_BETWEEN_STEPS = "SPIEL4J_BENCH_COLLECT_BETWEEN_STEPS";

    static ObjectNode run(BenchSpec spec) throws Exception {
        BatchFile batches = BatchFile.read(Path.of(spec.batches()));
        BenchWorkload.Factory factory = factory(spec.workload());
        try (BenchWorkload w = factory.loadBase(spec)) {
            long rssAfterLoad = settledRss();
            long peakLoad = ProcMemory.selfStatusBytes("VmHWM").orElse(rssAfterLoad);
            boolean reset = ProcMemory.resetSelfPeak();

            w.attachMethod();
            double initial = batches.eval().isEmpty() ? Double.NaN : w.evalLoss(batches.eval());
            int total = spec.warmupSteps() + spec.steps();
            double[] times = new double[spec.steps()];
            double[] losses = new double[spec.steps()];
            long measuredTokens = 0;
            boolean collectBetweenSteps = System.getenv(COLLECT_BETWEEN_STEPS) != null;
            for (int i = 0; i < total; i++) {
                Batch b = batches.train().get(i % batches.train().size());
                long t0 = System.nanoTime();
                double loss = w.step(b);
                long t1 = System.nanoTime();
                if (!Double.isFinite(loss)) {
                    throw new IllegalStateException("loss is " + loss + " at step " + i);
                }
                if (collectBetweenSteps) {
                    System.gc();
                }
                if (i >= spec.warmupSteps()) {
                    int k = i - spec.warmupSteps();
                    times[k] = (t1 - t0) / 1e9;
                    losses[k] = loss;
                    measuredTokens += BatchFile.realTokens(b);
                }
            }
            double fin = batches.eval().isEmpty() ? Double.NaN : w.evalLoss(batches.eval());
            long peakTrain = ProcMemory.selfStatusBytes("VmHWM").orElse(peakLoad);

            ObjectNode n = JSON.createObjectNode();
            n.put("status", "ok");
            n.put("tool", "spiel4j");
            n.put("model", spec.model().name());
            n.put("method", spec.method());
            n.put("activation_checkpointing", spec.activationCheckpointing());
            n.put("dtype", spec.dtype());
            n.put("threads", spec.threads());
            n.put("trainable_params", w.trainableParams());
            n.put("base_weight_bytes", w.baseWeightBytes());
            n.put("optimizer_state_bytes", w.optimizerStateBytes());
            n.put("tokens_per_step", (double) measuredTokens / spec.steps());
            n.put("warmup_steps", spec.warmupSteps());
            for (double t : times) {
                n.withArray("step_times_s").add(t);
            }
            for (double l : losses) {
                n.withArray("train_losses").add(l);
            }
            putFinite(n, "eval_loss_initial", initial);
            putFinite(n, "eval_loss", fin);
            n.put("rss_after_load_bytes", rssAfterLoad);
            n.put("peak_rss_load_bytes", peakLoad);
            if (reset) {
                n.put("peak_rss_train_bytes", peakTrain);
            } else {
                n.putNull("peak_rss_train_bytes");
            }
            n.put("peak_rss_bytes", Math.max(peakLoad, peakTrain));
            return n;
        }
    }

    static BenchWorkload.Factory factory(String name) {
        List<String> known = new ArrayList<>();
        for (BenchWorkload.Factory f : ServiceLoader.load(BenchWorkload.Factory.class)) {
            if (f.name().equals(name)) {
                return f;
            }
            known.add(f.name());
        }
        throw new IllegalArgumentException("no bench workload named '" + name + "' on the class path (found " + known
                + "; register a BenchWorkload.Factory in META-INF/services)");
    }

    private static void putFinite(ObjectNode n, String key, double v) {
        if (Double.isFinite(v)) {
            n.put(key, v);
        } else {
            n.putNull(key);
        }
    }

    private static String error(String message) {
        ObjectNode n = JSON.createObjectNode();
        n.put("status", "error");
        n.put("error", message);
        return n.toString();
    }
}
