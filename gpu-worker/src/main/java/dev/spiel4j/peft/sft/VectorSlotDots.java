package dev.spiel4j.peft.sft;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link SlotDots#dot} with the JDK's vector API: the same sums in the same order (lane {@code l} of the two 8-lane
 * accumulators is running sum {@code l} and {@code l + 8}; {@link FloatVector#fma} is {@link Math#fma} per lane), so
 * the same bits, several times faster. Loaded only when the JVM runs with {@code --add-modules jdk.incubator.vector}.
 */
final class VectorSlotDots {
    /** 256 bits on every machine, whatever its widest vectors: the lane count fixes the order of the sums. */
    private static final VectorSpecies<Float> EIGHT = FloatVector.SPECIES_256;

    private VectorSlotDots() {
    }

    static float dot(float[] a, int aFrom, float[] b, int bFrom, int n) {
        FloatVector low = FloatVector.zero(EIGHT);
        FloatVector high = FloatVector.zero(EIGHT);
        int t = 0;
        for (; t + 16 <= n; t += 16) {
            low = FloatVector.fromArray(EIGHT, a, aFrom + t).fma(FloatVector.fromArray(EIGHT, b, bFrom + t), low);
            high = FloatVector.fromArray(EIGHT, a, aFrom + t + 8)
                    .fma(FloatVector.fromArray(EIGHT, b, bFrom + t + 8), high);
        }
        FloatVector q = low.add(high);
        float s = ((q.lane(0) + q.lane(1)) + (q.lane(2) + q.lane(3))) + ((q.lane(4) + q.lane(5)) + (q.lane(6) + q.lane(7)));
        return SlotDots.tail(a, aFrom, b, bFrom, t, n, s);
    }
}
