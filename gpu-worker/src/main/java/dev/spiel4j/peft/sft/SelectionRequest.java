package dev.spiel4j.peft.sft;

/**
 * Everything the drop/grow decision for one matrix depends on, as plain host values, so a selector elsewhere (an
 * actor, another process) can decide: {@link DropGrowSelector#decide(SelectionRequest)} turns it into a
 * {@link SelectionDecision}.
 */
public sealed interface SelectionRequest {

    /** Module path of the matrix. */
    String module();

    /** Update step of the reselection. */
    int step();

    /** Slots to replace, {@code floor(k * fraction)}. */
    int replacements();

    /** SpIEL-AG: current slots, their |delta| and the phase's candidate statistics. */
    record AccumulatedGradient(String module, int step, int replacements, long[] slotIndices, float[] absPhi,
                               CandidateStats stats) implements SelectionRequest {
        public AccumulatedGradient {
            slotIndices = slotIndices.clone();
            absPhi = absPhi.clone();
        }

        @Override
        public long[] slotIndices() {
            return slotIndices.clone();
        }

        @Override
        public float[] absPhi() {
            return absPhi.clone();
        }
    }

    /** SpIEL-MA: current slots, their |delta| and SM3's row and column accumulators. */
    record MomentumApproximation(String module, int step, int replacements, long[] slotIndices, float[] absPhi,
                                 float[] rowAccumulator, float[] columnAccumulator) implements SelectionRequest {
        public MomentumApproximation {
            slotIndices = slotIndices.clone();
            absPhi = absPhi.clone();
            rowAccumulator = rowAccumulator.clone();
            columnAccumulator = columnAccumulator.clone();
        }

        @Override
        public long[] slotIndices() {
            return slotIndices.clone();
        }

        @Override
        public float[] absPhi() {
            return absPhi.clone();
        }

        @Override
        public float[] rowAccumulator() {
            return rowAccumulator.clone();
        }

        @Override
        public float[] columnAccumulator() {
            return columnAccumulator.clone();
        }
    }
}
