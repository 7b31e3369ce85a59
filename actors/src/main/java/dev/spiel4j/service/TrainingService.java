package dev.spiel4j.service;

import com.typesafe.config.Config;
import dev.spiel4j.config.RunSettings;
import dev.spiel4j.hub.HubClient;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The entry point of a training run through the actor system ({@code ./spiel4j train}): one actor system per run,
 * whose guardian is the {@link RunSupervisor}. Shutting the system down (SIGTERM runs Pekko's coordinated
 * shutdown) first stops the run, so the trainer writes a final checkpoint; starting a run with the id of an
 * existing run directory resumes it from its latest checkpoint.
 */
public final class TrainingService {
    private TrainingService() {
    }

    /**
     * A run in progress.
     *
     * @param system its actor system; of a data-parallel run, the coordinator's cluster node
     * @param run    the run's supervisor (of a data-parallel run, the proxy of the cluster's singleton)
     * @param ended  completed once the run has ended here and the node with it: true when the run moved to another
     *               node instead (this data-parallel coordinator was cut off and downed, a standby took the run over)
     */
    public record Run(RunSettings settings, ActorSystem<?> system, ActorRef<RunSupervisor.Command> run,
                      CompletableFuture<RunSummary> summary, CompletableFuture<Boolean> ended) {

        /**
         * Whether the run moved to another node: the run goes on there, from the last checkpoint this node wrote.
         * Known once this node's actor system has terminated ({@link #await()} returned or threw).
         */
        public boolean movedAway() {
            system.getWhenTerminated().toCompletableFuture().join();
            return ended.getNow(false);
        }

        /** Asks the run to stop early (final checkpoint first); {@link #await()} then returns a STOPPED summary. */
        public void stop() {
            run.tell(new RunSupervisor.Stop());
        }

        /** Waits for the run's end and for its actor system (broker and publishers included) to shut down. */
        public RunSummary await() {
            try {
                RunSummary s = summary.get();
                system.getWhenTerminated().toCompletableFuture().get(2, TimeUnit.MINUTES);
                return s;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                stop();
                throw new IllegalStateException("interrupted while waiting for run " + settings.run().id(), e);
            } catch (ExecutionException e) {
                // the system ends by itself after its run: a cluster node once its workers have left, or once the run
                // has moved to a standby (terminated now, the workers would see a lost coordinator and take the
                // failed run over)
                try {
                    system.getWhenTerminated().toCompletableFuture().get(2, TimeUnit.MINUTES);
                } catch (InterruptedException | ExecutionException | java.util.concurrent.TimeoutException notEnded) {
                    system.terminate();
                }
                Throwable cause = e.getCause();
                throw cause instanceof RuntimeException r ? r
                        : new IllegalStateException("run " + settings.run().id() + " failed: " + cause, cause);
            } catch (java.util.concurrent.TimeoutException e) {
                throw new IllegalStateException("the actor system of run " + settings.run().id()
                        + " did not shut down within 2 minutes", e);
            }
        }
    }

    /** Runs to the end (or until the JVM is asked to stop) and returns the summary. */
    public static RunSummary run(Config config, ProgressListener listener) {
        return start(config, listener).await();
    }

    /**
     * Starts a run in the background. {@code hf://} locations of the model and the data are resolved first, once,
     * in the calling thread (downloading what the Hub cache lacks, progress to {@link ProgressListener#onDownload}).
     *
     * @param config the run's full configuration ({@link RunSettings#load}): the {@code spiel4j} section and
     *               Pekko's settings, the trainer dispatcher's included
     */
    public static Run start(Config config, ProgressListener listener) {
        config = RunSettings.resolveHubLocations(config, HubClient.fromEnvironment(listener::onDownload));
        RunSettings settings = RunSettings.from(config);
        FailureInjection failures = FailureInjection.from(config);
        CompletableFuture<RunSummary> summary = new CompletableFuture<>();
        Behavior<RunSupervisor.Command> supervisor = RunSupervisor.create(settings, listener, summary, failures);
        ActorSystem<?> system;
        ActorRef<RunSupervisor.Command> run;
        // a data-parallel run's end waits for its workers to leave: no standby is then left to take it over
        CompletableFuture<Boolean> ended = new CompletableFuture<>();
        if (settings.cluster().enabled()) {
            // the run's coordinator is the cluster's singleton, first on this node: standby workers can take it over
            ActorSystem<ClusterNode.Command> node = ActorSystem.create(ClusterNode.coordinator(summary, ended),
                    ClusterNodes.SYSTEM, ClusterNodes.nodeConfig(config, settings.cluster().host(),
                            settings.cluster().port(), List.of(ClusterNodes.COORDINATOR)));
            run = ClusterNodes.initRunSingleton(node, ClusterNode.hosted(node, supervisor));
            system = node;
        } else {
            ActorSystem<RunSupervisor.Command> alone = ActorSystem.create(supervisor, ClusterNodes.SYSTEM, config);
            run = alone;
            system = alone;
            summary.whenComplete((s, e) -> ended.complete(false));
        }
        // Shutdown (SIGTERM, or the system terminating) stops the run first, so the final checkpoint is written.
        CoordinatedShutdown.get(system).addTask(CoordinatedShutdown.PhaseBeforeServiceUnbind(), "spiel4j-stop-run",
                () -> {
                    if (!summary.isDone()) {
                        run.tell(new RunSupervisor.Stop());
                    }
                    return ended.thenApply(v -> Done.getInstance());
                });
        return new Run(settings, system, run, summary, ended);
    }
}
