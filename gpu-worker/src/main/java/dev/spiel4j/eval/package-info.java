/**
 * Evaluation on held-out data: {@link dev.spiel4j.eval.MultipleChoiceFile} reads MMLU- and ARC-shaped JSON lines
 * into {@link dev.spiel4j.eval.Question}s, {@link dev.spiel4j.eval.MultipleChoiceScorer} scores them by
 * log-likelihood with any fine-tuning method's {@link dev.spiel4j.model.LinearLayers}, one batched forward pass per
 * question, and returns per-question {@link dev.spiel4j.eval.Prediction}s with the accuracies in a
 * {@link dev.spiel4j.eval.MultipleChoiceResult}. Loss on held-out text is {@link dev.spiel4j.model.LossScorer}.
 */
package dev.spiel4j.eval;
