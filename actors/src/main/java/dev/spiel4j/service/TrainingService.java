package dev.spiel4j.service;

import com.typesafe.config.Config;
import dev.spiel4j.config.RunSettings;
import dev.spiel4j.hub.HubClient;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;

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

    /** A run in progress. */
    public record Run(RunSettings settings, ActorSystem<RunSupervisor.Command> system,
                      CompletableFuture<RunSummary> summary) {

        /** Asks the run to stop early (final checkpoint first); {@link #await()} then returns a STOPPED summary. */
        public void stop() {
            system.tell(new RunSupervisor.Stop());
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
                system.terminate();
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
        if (settings.cluster().enabled()) {
            config = ClusterNodes.nodeConfig(config, settings.cluster().host(), settings.cluster().port(),
                    ClusterNodes.COORDINATOR);
        }
        ActorSystem<RunSupervisor.Command> system = ActorSystem.create(
                RunSupervisor.create(settings, listener, summary, failures), ClusterNodes.SYSTEM, config);
        if (settings.cluster().enabled()) {
            ClusterNodes.formCluster(system);
        }
        // Shutdown (SIGTERM, or the system terminating) stops the run first, so the final checkpoint is written.
        CoordinatedShutdown.get(system).addTask(CoordinatedShutdown.PhaseBeforeServiceUnbind(), "spiel4j-stop-run",
                () -> {
                    if (!summary.isDone()) {
                        system.tell(new RunSupervisor.Stop());
                    }
                    return summary.handle((s, e) -> Done.getInstance());
                });
        return new Run(settings, system, summary);
    }
}
