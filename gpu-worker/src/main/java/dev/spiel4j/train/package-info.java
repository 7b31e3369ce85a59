/**
 * One training step ({@link dev.spiel4j.train.Trainer}: micro-batches, masked cross-entropy, gradient accumulation,
 * global-norm clipping, the method's update), learning-rate schedules and the model interface the trainer drives
 * ({@link dev.spiel4j.train.CausalLm}).
 */
package dev.spiel4j.train;
