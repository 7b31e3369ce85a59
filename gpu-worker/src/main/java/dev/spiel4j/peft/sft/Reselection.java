package dev.spiel4j.peft.sft;

import java.util.List;

/**
 * What one reselection did, for telemetry and logs.
 *
 * @param step     the update step after which it ran
 * @param fraction the schedule's replacement fraction at that step
 * @param matrices per targeted matrix, in target order
 */
public record Reselection(int step, double fraction, List<MatrixChange> matrices) {

    public Reselection {
        matrices = List.copyOf(matrices);
    }

    /**
     * @param module   the matrix's module
     * @param replaced slots dropped and regrown
     * @param active   slots of the matrix
     * @param slotAges each slot's age after the reselection (steps since growth), or null when the optimizer keeps
     *                 none (SM3)
     */
    public record MatrixChange(String module, int replaced, int active, int[] slotAges) {
    }
}
