package dev.spiel4j.bench;

import dev.spiel4j.data.Batch;

import java.util.List;

/**
 * A stand-in for the engine with known memory behaviour, to test {@link BenchChild}'s measurement: the base model
 * is {@code random.dim} MiB of touched heap, the method {@code budget.deltas} bytes (times the environment's
 * {@value #METHOD_SCALE}, default 1: a run whose environment changes the memory it shows, as the harness's memory run
 * does), and each step sleeps 5 ms.
 */
final class SyntheticWorkload implements BenchWorkload {

    /** Registered in META-INF/services (test resources) under the name "synthetic". */
    public static final class Factory implements BenchWorkload.Factory {
        @Override
        public String name() {
            return "synthetic";
        }

        @Override
        public BenchWorkload loadBase(BenchSpec spec) {
            return new SyntheticWorkload(spec);
        }
    }

    static final String METHOD_SCALE = "SPIEL4J_SYNTHETIC_METHOD_SCALE";

    private final BenchSpec spec;
    private final byte[] base;
    private byte[] method;
    private int steps;

    private SyntheticWorkload(BenchSpec spec) {
        this.spec = spec;
        this.base = touched(spec.model().random().dim() << 20);
    }

    private static byte[] touched(long bytes) {
        byte[] a = new byte[Math.toIntExact(bytes)];
        for (int i = 0; i < a.length; i += 4096) {
            a[i] = 1;
        }
        return a;
    }

    @Override
    public long baseWeightBytes() {
        return base.length;
    }

    @Override
    public void attachMethod() {
        method = touched(spec.budget().deltas() * Integer.parseInt(System.getenv().getOrDefault(METHOD_SCALE, "1")));
    }

    @Override
    public long trainableParams() {
        return spec.budget().deltas();
    }

    @Override
    public double step(Batch batch) throws InterruptedException {
        Thread.sleep(5);
        steps++;
        return 1.0 / steps;
    }

    @Override
    public double evalLoss(List<Batch> batches) {
        return 2.0 / (steps + 1);
    }

    @Override
    public long optimizerStateBytes() {
        return 8L * method.length;
    }

    @Override
    public void close() {
        method = null;
    }
}
