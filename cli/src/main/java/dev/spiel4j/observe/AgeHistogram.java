package dev.spiel4j.observe;

import dev.spiel4j.proto.v1.AgeBucket;

import java.util.ArrayList;
import java.util.List;

/** Builds the age histogram of a selection event (the paper's Figure 2) from the slots' ages. */
public final class AgeHistogram {
    private AgeHistogram() {
    }

    /**
     * Equal-width buckets {@code [k w, (k+1) w)} from age 0 up to the oldest slot, with the width {@code w} chosen
     * so that there are at most {@code maxBuckets}.
     *
     * @param ages update steps since each active slot was last grown (non-negative)
     * @return no buckets for no slots
     */
    public static List<AgeBucket> of(int[] ages, int maxBuckets) {
        if (maxBuckets < 1) {
            throw new IllegalArgumentException("maxBuckets must be positive, got " + maxBuckets);
        }
        int oldest = -1;
        for (int age : ages) {
            if (age < 0) {
                throw new IllegalArgumentException("negative slot age " + age);
            }
            oldest = Math.max(oldest, age);
        }
        if (oldest < 0) {
            return List.of();
        }
        int width = (int) Math.ceil((oldest + 1.0) / maxBuckets);
        long[] counts = new long[oldest / width + 1];
        for (int age : ages) {
            counts[age / width]++;
        }
        List<AgeBucket> buckets = new ArrayList<>(counts.length);
        for (int k = 0; k < counts.length; k++) {
            buckets.add(AgeBucket.newBuilder().setMinAge(k * width).setMaxAge((k + 1) * width).setCount(counts[k])
                    .build());
        }
        return buckets;
    }
}
