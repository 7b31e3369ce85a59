/**
 * Training: one step ({@link dev.spiel4j.train.Trainer}: micro-batches, masked cross-entropy, gradient accumulation,
 * global-norm clipping, the method's update) of a {@link dev.spiel4j.model.CausalLm}, learning-rate schedules, and
 * the plain training loop ({@link dev.spiel4j.train.TrainingRun}: data, eval loss, progress, checkpoint and resume
 * state, process memory through {@link dev.spiel4j.train.ProcMemory}).
 */
package dev.spiel4j.train;
