package dev.spiel4j.train;

/**
 * How a training step's backward pass runs. All three give the same gradients bit for bit (the arithmetic is the
 * same; {@code BackwardPassTest} proves it for every method); they differ in what stays alive.
 */
public enum BackwardPass {
    /**
     * One backward pass through the whole graph of a micro-batch: every block's activations, and every gradient a
     * method reads from them (SpIEL's {@code dL/dy} per targeted layer), stay alive until it ends.
     */
    WHOLE_GRAPH,
    /**
     * The graph is cut at each block's input and the backward pass runs one block at a time from the top, each
     * block fed the gradient of its output: a block's gradients are collected and its activations and
     * {@code dL/dy} freed as soon as its segment is done, so at most one block's {@code dL/dy} is alive.
     */
    BLOCK_WISE,
    /**
     * Block-wise, and the forward pass keeps only each block's input (activation checkpointing): each block's
     * forward pass is recomputed inside its backward segment. Less memory for one more forward pass per step.
     */
    CHECKPOINTED
}
