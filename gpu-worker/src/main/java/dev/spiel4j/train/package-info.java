/**
 * Training: the {@link dev.spiel4j.train.TrainingSession} (a base model on a device as an
 * {@link dev.spiel4j.train.EngineModel}, the fine-tuning method, step, evaluation, state and resume) that the
 * service, the benchmarks and the commands use; its one step ({@link dev.spiel4j.train.Trainer}: micro-batches,
 * masked cross-entropy, gradient accumulation, global-norm clipping, the method's update) of a
 * {@link dev.spiel4j.model.CausalLm}; device settings ({@link dev.spiel4j.train.DeviceSetting}); learning-rate
 * schedules; the examples of a data file split for training and evaluation ({@link dev.spiel4j.train.TrainingData});
 * process memory ({@link dev.spiel4j.train.ProcMemory}).
 */
package dev.spiel4j.train;
