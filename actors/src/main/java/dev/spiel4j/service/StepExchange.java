package dev.spiel4j.service;

import dev.spiel4j.data.Batch;
import dev.spiel4j.train.MicroBatchGradient;
import org.apache.pekko.actor.typed.ActorRef;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The bookkeeping of one data-parallel step on the coordinator: which worker computes which micro-batch, which parts
 * have arrived. Micro-batches go round-robin over the workers; a lost worker's unfinished ones go round-robin over the
 * others. Where a part comes from does not change its bits, so the first copy of each part to arrive is kept. A step
 * whose micro-batch 0 chooses for the others (SpIEL-AG's candidates at a selection phase's start) hands out micro-batch
 * 0 first and the rest, with its choices, once its part is in.
 */
final class StepExchange {
    private final int step;
    private final List<Batch> batches;
    private final long stepTokens;
    private final MicroBatchGradient[] parts;
    private final ActorRef<GradientWorker.Command>[] owners;
    private final boolean firstAlone;
    private final long startNanos = System.nanoTime();
    private long bytesIn;
    private double exchangeSeconds;
    private boolean syncing;

    @SuppressWarnings("unchecked")
    StepExchange(int step, List<Batch> batches, boolean firstAlone) {
        this.step = step;
        this.firstAlone = firstAlone;
        this.batches = List.copyOf(batches);
        this.stepTokens = batches.stream().mapToLong(Batch::lossTokens).sum();
        this.parts = new MicroBatchGradient[batches.size()];
        this.owners = new ActorRef[batches.size()];
    }

    int step() {
        return step;
    }

    long stepTokens() {
        return stepTokens;
    }

    /**
     * Gives every micro-batch that has neither a part nor a worker to one of {@code workers}, round-robin in order,
     * and returns the new assignments by worker (micro-batch indices ascending).
     */
    Map<ActorRef<GradientWorker.Command>, List<GradientWorker.IndexedBatch>> assign(
            List<ActorRef<GradientWorker.Command>> workers) {
        Map<ActorRef<GradientWorker.Command>, List<GradientWorker.IndexedBatch>> out = new LinkedHashMap<>();
        int next = 0;
        int end = firstAlone && parts[0] == null ? 1 : parts.length;
        for (int i = 0; i < end; i++) {
            if (parts[i] == null && owners[i] == null) {
                ActorRef<GradientWorker.Command> w = workers.get(next++ % workers.size());
                owners[i] = w;
                out.computeIfAbsent(w, k -> new ArrayList<>()).add(new GradientWorker.IndexedBatch(i, batches.get(i)));
            }
        }
        return out;
    }

    /** {@code worker} is gone: its micro-batches without a part wait for {@link #assign} again. */
    void release(ActorRef<GradientWorker.Command> worker) {
        for (int i = 0; i < owners.length; i++) {
            if (worker.equals(owners[i]) && parts[i] == null) {
                owners[i] = null;
            }
        }
    }

    /**
     * Takes a worker's parts; {@code exchangeSeconds} is how much longer its answer took than its computation
     * (serialization, transfer and queueing, both ways).
     */
    void accept(List<MicroBatchGradient> computed, double exchangeSeconds) {
        this.exchangeSeconds = Math.max(this.exchangeSeconds, exchangeSeconds);
        for (MicroBatchGradient p : computed) {
            if (p.index() < 0 || p.index() >= parts.length) {
                throw new IllegalArgumentException("step " + step + " has no micro-batch " + p.index());
            }
            if (parts[p.index()] == null) {
                parts[p.index()] = p;
                bytesIn += 4 * p.floats();
            }
        }
    }

    /** What micro-batch 0 chose for the others, once its part is in (empty before, and for steps without choices). */
    List<long[]> choices() {
        return parts[0] == null ? List.of() : parts[0].choices();
    }

    boolean complete() {
        return Arrays.stream(parts).allMatch(p -> p != null);
    }

    /** The parts in micro-batch order, once {@link #complete()}. */
    List<MicroBatchGradient> parts() {
        return List.of(parts);
    }

    /** Seconds since the step was handed out. */
    double seconds() {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    /** A worker is (re)synced during this step: it loads the model and the state before it computes. */
    void syncing() {
        syncing = true;
    }

    /**
     * The longest time a worker's answer took beyond its computation; NaN for a step that synced a worker, whose
     * answer also waited for that.
     */
    double exchangeSeconds() {
        return syncing ? Double.NaN : exchangeSeconds;
    }

    /** Bytes of gradients received (the first copy of each part). */
    long bytesIn() {
        return bytesIn;
    }
}
