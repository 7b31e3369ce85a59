/**
 * Observing runs from outside the training process: {@link RunLog} writes a run's metrics and events into its run
 * directory (the file format is in its javadoc), {@link RunHistory} reads them back (or the same content from the
 * metrics and events topics), {@link RunReport} turns them into charts and an HTML page, {@link RunWatcher} follows
 * runs live on Kafka and {@link RunPull} rebuilds a run's latest sparse fine-tuning from the checkpoints topic.
 * Internal: the implementation of the {@code watch}, {@code pull}, {@code report} and {@code dead-letters} commands,
 * not API.
 */
package dev.spiel4j.cli.internal.observe;
