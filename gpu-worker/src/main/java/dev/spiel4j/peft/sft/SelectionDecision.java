package dev.spiel4j.peft.sft;

import java.util.Arrays;

/**
 * What one reselection of one matrix changes, as plain host arrays so it can travel between a trainer and a
 * selector: slot {@code slots[i]} gets the flat index {@code newIndices[i]}, its delta restarts at 0 and its AdamW
 * moments are seeded with {@code seedFirstMoment[i]} and {@code seedSecondMoment[i]} (0 for SpIEL-MA, whose SM3
 * keeps no per-slot state), the means of the {@code seedSamples} gradients they were gathered from. Slots not
 * listed keep index, value and optimizer state.
 */
public record SelectionDecision(int[] slots, long[] newIndices, float[] seedFirstMoment, float[] seedSecondMoment,
                                int seedSamples) {

    public SelectionDecision {
        if (newIndices.length != slots.length || seedFirstMoment.length != slots.length
                || seedSecondMoment.length != slots.length) {
            throw new IllegalArgumentException("selection decision arrays differ in length: " + slots.length + " slots, "
                    + newIndices.length + " indices, " + seedFirstMoment.length + "/" + seedSecondMoment.length + " seeds");
        }
        slots = slots.clone();
        newIndices = newIndices.clone();
        seedFirstMoment = seedFirstMoment.clone();
        seedSecondMoment = seedSecondMoment.clone();
    }

    public static SelectionDecision none() {
        return new SelectionDecision(new int[0], new long[0], new float[0], new float[0], 0);
    }

    /** Number of slots that change. */
    public int size() {
        return slots.length;
    }

    @Override
    public int[] slots() {
        return slots.clone();
    }

    @Override
    public long[] newIndices() {
        return newIndices.clone();
    }

    @Override
    public float[] seedFirstMoment() {
        return seedFirstMoment.clone();
    }

    @Override
    public float[] seedSecondMoment() {
        return seedSecondMoment.clone();
    }

    @Override
    public String toString() {
        return "SelectionDecision[slots=" + Arrays.toString(slots) + ", newIndices=" + Arrays.toString(newIndices) + "]";
    }
}
