/**
 * Fine-tuning methods behind one interface, {@link dev.spiel4j.peft.FineTuningMethod}: SpIEL-AG and SpIEL-MA
 * ({@code peft.sft}), LoRA ({@code peft.lora}), (IA)3 ({@code peft.ia3}) and full fine-tuning ({@code peft.full}).
 * A {@link dev.spiel4j.peft.MethodSpec} names the method, its {@link dev.spiel4j.peft.Budget} and targets and its
 * hyperparameters, and creates the method for a model.
 *
 * <p>Trainable values and optimizer state live on the host (Java arrays): each training step copies them into
 * leaf arrays of the step's scope, autograd fills their gradients and the host optimizers
 * ({@link dev.spiel4j.optim.AdamW}, {@link dev.spiel4j.optim.Sm3}) update them. This keeps native memory scoped to
 * the step, makes state saving a plain copy, and keeps the SpIEL selector a pure function of host arrays
 * ({@link dev.spiel4j.peft.sft.DropGrowSelector}). Only full fine-tuning changes the model's own weights.
 */
package dev.spiel4j.peft;
