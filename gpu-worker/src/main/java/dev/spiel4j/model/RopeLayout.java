package dev.spiel4j.model;

/** Which pairs of head dimensions a rotary embedding rotates together. */
public enum RopeLayout {
    /** (x0,x1), (x2,x3), ...: Meta and GGUF/llama.cpp checkpoints. */
    INTERLEAVED,
    /** (x_i, x_{i+d/2}): Hugging Face checkpoints, whose q/k rows are permuted for it. */
    ROTATE_HALF
}
