/**
 * Observing runs from outside the training process: {@link dev.spiel4j.observe.RunLog} writes a run's metrics and
 * events into its run directory (the file format is in its javadoc), {@link dev.spiel4j.observe.RunHistory} reads
 * them back (or the same content from the metrics and events topics), {@link dev.spiel4j.observe.RunReport} turns
 * them into charts and an HTML page, {@link dev.spiel4j.observe.RunWatcher} follows runs live on Kafka and
 * {@link dev.spiel4j.observe.RunPull} rebuilds a run's latest sparse fine-tuning from the checkpoints topic.
 */
package dev.spiel4j.observe;
