/**
 * Fine-tuning methods behind one interface, {@link dev.spiel4j.peft.FineTuningMethod}: SpIEL-AG and SpIEL-MA
 * ({@code peft.sft}), LoRA ({@code peft.lora}), (IA)3 ({@code peft.ia3}) and full fine-tuning ({@code peft.full}).
 * Like PEFT, each method package holds the method's config record ({@link dev.spiel4j.peft.MethodConfig}: its
 * targets, {@link dev.spiel4j.peft.Budget}, hyperparameters; it creates the method for a model) beside the method
 * itself, and {@code peft.registry} maps method names to the code that builds their configs from a run's settings.
 *
 * <p>Trainable values and optimizer state live on the engine, in sub-managers of the model's manager that the
 * method closes: SpIEL's delta values and indices, LoRA's and (IA)3's tensors (slices of one array per method), the
 * optimizers' state ({@link dev.spiel4j.optim.internal.AdamW}'s moments and ages,
 * {@link dev.spiel4j.optim.internal.Sm3}'s accumulators). A step's leaves are handles on those arrays in the step's
 * scope, autograd fills their gradients, and the optimizers update the values in place on the engine: nothing but
 * scalars (the gradient norm, a few sizes) crosses to the host per step. Host copies are made for a SpIEL reselection
 * (the selector is a pure function of host arrays, {@link dev.spiel4j.peft.sft.DropGrowSelector}), for exports and
 * for state saving and restoring. Only full fine-tuning changes the model's own weights (SpIEL writes W + delta into
 * them while it is open and puts W back when it is closed).
 */
package dev.spiel4j.peft;
