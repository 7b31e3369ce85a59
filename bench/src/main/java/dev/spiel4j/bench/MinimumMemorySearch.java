package dev.spiel4j.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.function.LongPredicate;

/**
 * The paper's minimum-memory measurement (Appendix F: binary search for the smallest memory limit at which N
 * training steps complete), adapted from a GPU memory fraction to a process memory cap: {@code probe} runs the
 * workload under a cap and says whether it completed. Completion is assumed monotone in the cap.
 *
 * @param toleranceBytes stop when the bracket [failing cap, passing cap] is at most this wide
 * @param maxProbes      give up refining after this many probes (the bracket found so far is reported)
 */
record MinimumMemorySearch(long toleranceBytes, int maxProbes) {

    public MinimumMemorySearch {
        if (toleranceBytes <= 0) {
            throw new IllegalArgumentException("tolerance must be positive, got " + toleranceBytes);
        }
        if (maxProbes < 1) {
            throw new IllegalArgumentException("maxProbes must be at least 1, got " + maxProbes);
        }
    }

    /** One probe: the cap tried and whether the workload completed under it. */
    public record Probe(long capBytes, boolean passed) {
    }

    /**
     * @param minimumBytes the smallest cap seen to pass (an upper bound of the true minimum, within tolerance
     *                     when {@code converged}); empty when even the upper cap failed
     * @param maximumFailingBytes the largest cap seen to fail (a lower bound), empty when none failed
     */
    public record Result(OptionalLong minimumBytes, OptionalLong maximumFailingBytes, boolean converged,
                         List<Probe> probes) {
        public Result {
            probes = List.copyOf(probes);
        }
    }

    /**
     * Bisects between {@code lowBytes} and {@code highBytes}. The upper cap is probed first: if it fails, the
     * workload cannot run in the range at all and the result says so. The lower cap is assumed to fail and is
     * not probed (a workload that passes below it reports {@code lowBytes} within tolerance as its minimum).
     */
    public Result search(long lowBytes, long highBytes, LongPredicate probe) {
        if (lowBytes < 0 || highBytes <= lowBytes) {
            throw new IllegalArgumentException("need 0 <= low < high, got low " + lowBytes + ", high " + highBytes);
        }
        List<Probe> probes = new ArrayList<>();
        boolean top = probe.test(highBytes);
        probes.add(new Probe(highBytes, top));
        if (!top) {
            return new Result(OptionalLong.empty(), OptionalLong.of(highBytes), false, probes);
        }
        long fail = lowBytes, pass = highBytes;
        boolean anyFailed = false;
        while (pass - fail > toleranceBytes && probes.size() < maxProbes) {
            long mid = fail + (pass - fail) / 2;
            boolean ok = probe.test(mid);
            probes.add(new Probe(mid, ok));
            if (ok) {
                pass = mid;
            } else {
                fail = mid;
                anyFailed = true;
            }
        }
        return new Result(OptionalLong.of(pass), anyFailed ? OptionalLong.of(fail) : OptionalLong.empty(),
                pass - fail <= toleranceBytes, probes);
    }
}
