package dev.spiel4j.bench;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import java.util.function.LongPredicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MinimumMemorySearchTest {
    private static final long MIB = 1024 * 1024;

    /** A python child that touches {@code mib} MiB, holds it long enough to be polled, and reports ok. */
    static List<String> allocatingChild(int mib) {
        return List.of("python3", "-c", "import json, time\n"
                + "b = bytearray(b'\\x01') * (" + mib + " << 20)\n"
                + "time.sleep(0.3)\n"
                + "print(json.dumps({'status': 'ok', 'len': len(b)}))\n");
    }

    /** A probe that runs {@code command} under a cap and requires it to succeed. */
    private static LongPredicate childProbe(List<String> command, Duration timeout, boolean forcePolling) {
        return cap -> ChildRunner.run(command, timeout, OptionalLong.of(cap), forcePolling).succeeded();
    }

    @Test
    void bisectsAnExactThreshold() {
        long threshold = 123_456_789;
        MinimumMemorySearch search = new MinimumMemorySearch(MIB, 64);
        MinimumMemorySearch.Result r = search.search(0, 1024 * MIB, cap -> cap >= threshold);
        assertTrue(r.converged());
        long min = r.minimumBytes().orElseThrow(), fail = r.maximumFailingBytes().orElseThrow();
        assertTrue(min >= threshold && min - threshold <= MIB, "minimum " + min);
        assertTrue(fail < threshold && min - fail <= MIB);
        // log2(1024 MiB / 1 MiB) = 10 halvings after the first probe of the upper cap
        assertEquals(11, r.probes().size());
    }

    @Test
    void reportsWhenTheUpperCapFailsAndWhenProbesRunOut() {
        MinimumMemorySearch.Result none = new MinimumMemorySearch(MIB, 10).search(0, 100 * MIB, cap -> false);
        assertTrue(none.minimumBytes().isEmpty());
        assertFalse(none.converged());
        assertEquals(1, none.probes().size());

        MinimumMemorySearch.Result cut = new MinimumMemorySearch(1, 3).search(0, 1 << 20, cap -> cap >= 1000);
        assertFalse(cut.converged());
        assertEquals(3, cut.probes().size());
        assertThrows(IllegalArgumentException.class, () -> new MinimumMemorySearch(0, 3));
        assertThrows(IllegalArgumentException.class, () -> new MinimumMemorySearch(1, 3).search(5, 5, c -> true));
    }

    @Test
    void findsAChildsAllocationUnderCgroupOrPolling() {
        assertFindsAllocation(false);
    }

    @Test
    void findsAChildsAllocationByPolling() {
        assertFindsAllocation(true);
    }

    /**
     * The minimum cap of a child that allocates 96 MiB minus that of the same child allocating nothing must be
     * 96 MiB, within the two searches' tolerances plus interpreter noise.
     */
    private static void assertFindsAllocation(boolean forcePolling) {
        MinimumMemorySearch search = new MinimumMemorySearch(2 * MIB, 20);
        Duration timeout = Duration.ofSeconds(30);
        MinimumMemorySearch.Result base = search.search(0, 512 * MIB,
                childProbe(allocatingChild(0), timeout, forcePolling));
        MinimumMemorySearch.Result big = search.search(0, 512 * MIB,
                childProbe(allocatingChild(96), timeout, forcePolling));
        assertTrue(base.converged() && big.converged(), base + " / " + big);
        double diffMib = (big.minimumBytes().orElseThrow() - base.minimumBytes().orElseThrow()) / (double) MIB;
        assertEquals(96, diffMib, 8, "minimum(96 MiB child) - minimum(empty child) in MiB");
    }
}
