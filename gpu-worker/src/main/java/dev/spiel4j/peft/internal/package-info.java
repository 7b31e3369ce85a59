/**
 * What the dense-adapter baselines (LoRA, (IA)3) share: {@link AdapterMethod} and the {@link DenseParameters} it
 * trains. Internal: public only for the method packages {@code peft.lora} and {@code peft.ia3}; not API.
 */
package dev.spiel4j.peft.internal;
