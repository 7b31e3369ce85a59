package dev.spiel4j.train;

import dev.spiel4j.peft.MethodConfig;

import java.util.Objects;

/**
 * What a {@link TrainingSession} trains: the fine-tuning method, for how many update steps (SpIEL's drop/grow
 * schedule is laid out over them), with which gradient clipping.
 *
 * @param method      the method's config (budget, hyperparameters, seed)
 * @param totalSteps  update steps of the whole run ({@link Integer#MAX_VALUE}: until stopped)
 * @param maxGradNorm clip the global gradient norm to this; {@link Float#POSITIVE_INFINITY} does not clip
 * @param backward    how each step's backward pass runs (block-wise, or with activation checkpointing)
 */
public record SessionSpec(MethodConfig method, int totalSteps, float maxGradNorm, BackwardPass backward) {

    public SessionSpec {
        Objects.requireNonNull(method, "method");
        Objects.requireNonNull(backward, "backward pass");
        if (totalSteps < 1) {
            throw new IllegalArgumentException("total steps must be >= 1, got " + totalSteps);
        }
        if (!(maxGradNorm > 0)) {
            throw new IllegalArgumentException("max gradient norm must be positive, got " + maxGradNorm);
        }
    }

    /** With block-wise backward passes. */
    public SessionSpec(MethodConfig method, int totalSteps, float maxGradNorm) {
        this(method, totalSteps, maxGradNorm, BackwardPass.BLOCK_WISE);
    }

    /** This spec with another backward pass. */
    public SessionSpec withBackward(BackwardPass pass) {
        return new SessionSpec(method, totalSteps, maxGradNorm, pass);
    }

    /** Without gradient clipping (the benchmarks, as the Python peer trains; evaluation, which never steps). */
    public static SessionSpec unclipped(MethodConfig method, int totalSteps) {
        return new SessionSpec(method, totalSteps, Float.POSITIVE_INFINITY);
    }
}
