package dev.spiel4j.service;

import dev.spiel4j.peft.MethodState;

import java.nio.file.Path;

/**
 * A checkpoint in the run directory, loaded and validated: everything a trainer needs to go on.
 *
 * @param id              e.g. {@code step-000008}
 * @param step            completed optimizer steps
 * @param deltaFile       the sparse fine-tuning file ({@link CheckpointStore#DELTA_FILE})
 * @param stateFile       the training-state file ({@link CheckpointStore#STATE_FILE})
 * @param baseFingerprint fingerprint of the base model it was trained on
 * @param baseStorage     how that base held its block linears ({@code model.quantize}: none or nf4)
 * @param position        the next data to train on
 * @param state           the method's trainable values and optimizer/selector state
 */
public record SavedCheckpoint(String id, int step, Path deltaFile, Path stateFile, String baseFingerprint,
                              String baseStorage, StreamPosition position, MethodState state) {
}
