/**
 * The optimizers on engine arrays: {@link AdamW} (per-slot ages, moments seeded for grown slots) and {@link Sm3}.
 * Internal: the fine-tuning methods create them from {@link dev.spiel4j.optim.OptimizerSettings}; not API.
 */
package dev.spiel4j.optim.internal;
