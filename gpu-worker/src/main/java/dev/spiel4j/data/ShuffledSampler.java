package dev.spiel4j.data;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Draws items epoch after epoch, each epoch in its own seeded order (a Fisher-Yates permutation seeded by
 * {@code (seed, epoch)}), so the order is a pure function of seed, epoch and index: drawing from a saved
 * {@link ShufflePosition} continues exactly as the uninterrupted run would. Not thread-safe (it caches an order).
 */
public final class ShuffledSampler<T> {

    /** Items drawn and the position after them. */
    public record Draw<T>(List<T> items, ShufflePosition next) {
        public Draw {
            items = List.copyOf(items);
        }
    }

    private final List<T> items;
    private final long seed;
    private long cachedEpoch = -1;
    private int[] cachedOrder;

    public ShuffledSampler(List<T> items, long seed) {
        if (items.isEmpty()) {
            throw new IllegalArgumentException("cannot sample from no items");
        }
        this.items = List.copyOf(items);
        this.seed = seed;
    }

    public int size() {
        return items.size();
    }

    /** The order of an epoch: a permutation of {@code 0..size-1}. */
    public int[] order(long epoch) {
        if (epoch != cachedEpoch) {
            int[] p = new int[items.size()];
            for (int i = 0; i < p.length; i++) {
                p[i] = i;
            }
            // Golden-ratio mixing keeps (seed, epoch) pairs apart; SplittableRandom is deterministic per seed.
            SplittableRandom rng = new SplittableRandom(seed ^ (epoch * 0x9E3779B97F4A7C15L + 0x632BE59BD9B4E019L));
            for (int i = p.length - 1; i > 0; i--) {
                int j = rng.nextInt(i + 1);
                int tmp = p[i];
                p[i] = p[j];
                p[j] = tmp;
            }
            cachedOrder = p;
            cachedEpoch = epoch;
        }
        return cachedOrder.clone();
    }

    /** Draws {@code n} items from {@code from}, crossing into the next epoch where one ends. */
    public Draw<T> draw(ShufflePosition from, int n) {
        Objects.requireNonNull(from, "from");
        if (from.index() > items.size()) {
            throw new IllegalArgumentException("shuffle position " + from + " is past the " + items.size()
                    + " items of an epoch (a different data set?)");
        }
        if (n < 0) {
            throw new IllegalArgumentException("cannot draw " + n + " items");
        }
        List<T> out = new ArrayList<>(n);
        long epoch = from.epoch();
        int index = from.index();
        int[] order = order(epoch);
        while (out.size() < n) {
            if (index == order.length) {
                epoch++;
                index = 0;
                order = order(epoch);
            }
            out.add(items.get(order[index++]));
        }
        return new Draw<>(out, new ShufflePosition(epoch, index));
    }
}
