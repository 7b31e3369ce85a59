package dev.spiel4j.peft.sft;

import ai.djl.Device;
import dev.spiel4j.peft.TargetMatrix;

/**
 * How a step computes a delta's gradient at its slots from its layer's {@code dY} and {@code X}: the cheapest form
 * that gives what the step needs. All three are linear in the tokens; their costs per token, in multiply-adds of
 * the dense product, are measured as {@link GatheredGradient} and {@link HostSlotGradient} say. The choice depends on
 * the shapes, the slot count and the device only, so a configuration always computes its gradients the same way.
 */
enum SlotGradientForm {
    /** {@code dY^T X}, then read at the slots; the only form that also gives SpIEL-AG's candidates. */
    DENSE,
    /** Appendix E on the engine ({@link GatheredGradient}). */
    GATHERED,
    /** Appendix E in the JVM ({@link HostSlotGradient}), for an engine on the CPU. */
    HOST;

    static SlotGradientForm cheapest(int k, TargetMatrix matrix, long tokens, Device device, boolean denseNeeded) {
        if (denseNeeded) {
            return DENSE;
        }
        double dense = matrix.size();
        double gathered = (double) GatheredGradient.GATHER_COST * k;
        double host = device.isGpu() || !HostSlotGradient.fits(tokens, matrix) ? Double.POSITIVE_INFINITY
                : (double) HostSlotGradient.COPY_COST * (matrix.rows() + matrix.cols())
                        + (double) HostSlotGradient.DOT_COST * k;
        if (host < dense && host < gathered) {
            return HOST;
        }
        return gathered < dense ? GATHERED : DENSE;
    }
}
