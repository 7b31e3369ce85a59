package dev.spiel4j.service;

import java.nio.file.Path;
import java.util.OptionalDouble;

/**
 * How a run ended.
 *
 * @param runId           the run's id
 * @param runDir          its directory (checkpoints, embedded broker data)
 * @param outcome         COMPLETED (all steps done), STOPPED (shutdown before the end) or FAILED
 * @param steps           completed optimizer steps
 * @param checkpoints     checkpoints written by this process (including the final one)
 * @param lastCheckpoint  directory of the newest checkpoint, null if none
 * @param deadLetters     records sent to the dead-letter topic
 * @param trainerRestarts times a failed trainer was restarted from the last checkpoint
 * @param kafkaOutages    times the publishers lost Kafka
 * @param finalLoss       training loss of the last step (NaN if no step ran)
 * @param finalEvalLoss   held-out loss of the last evaluation, if any ran
 * @param seconds         wall-clock time of the run
 * @param cluster         how the gradient workers of a data-parallel run did (zeros for a run in one process)
 * @param error           why the run failed; for STOPPED, what kept the stop from being clean (no final
 *                        checkpoint); null otherwise
 */
public record RunSummary(String runId, Path runDir, Outcome outcome, int steps, int checkpoints, Path lastCheckpoint,
                         long deadLetters, int trainerRestarts, int kafkaOutages, double finalLoss,
                         OptionalDouble finalEvalLoss, double seconds, Cluster cluster, String error) {

    /**
     * @param workers              gradient workers of the last step
     * @param workerFailures       workers lost during the run (their micro-batches went to the others)
     * @param exchangeBytesPerStep gradient bytes that crossed the network per step (parts in, sums out), mean
     * @param exchangeSecondsPerStep the time a step's slowest worker answer took beyond that worker's computation
     *                             (serialization, transfer, queueing), mean over the steps that synced no worker
     */
    public record Cluster(int workers, int workerFailures, long exchangeBytesPerStep, double exchangeSecondsPerStep) {
        public static final Cluster NONE = new Cluster(0, 0, 0, 0);
    }

    public enum Outcome { COMPLETED, STOPPED, FAILED }
}
