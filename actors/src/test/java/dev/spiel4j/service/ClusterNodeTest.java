package dev.spiel4j.service;

import com.typesafe.config.ConfigFactory;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The coordinator's cluster node (a one-node cluster here, its workers probes): when the run it hosts ends, it tells
 * every worker to leave, and ends once no other node is left.
 */
class ClusterNodeTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    private final ActorTestKit kit = ActorTestKit.create(ClusterNodes.SYSTEM,
            ClusterNodes.nodeConfig(ConfigFactory.load(), "127.0.0.1", 0, List.of(ClusterNodes.COORDINATOR)));

    @AfterEach
    void shutDown() {
        kit.shutdownTestKit();
    }

    @Test
    void whenItsRunEndsEveryWorkerIsToldToLeaveAndTheNodeEndsOnceAlone() throws Exception {
        CompletableFuture<RunSummary> run = new CompletableFuture<>();
        CompletableFuture<Boolean> ended = new CompletableFuture<>();
        ActorRef<ClusterNode.Command> node = kit.spawn(ClusterNode.coordinator(run, ended), "node");
        List<TestProbe<GradientWorker.Command>> workers = List.of(kit.createTestProbe(), kit.createTestProbe());
        TestProbe<Receptionist.Listing> listing = kit.createTestProbe();
        for (TestProbe<GradientWorker.Command> w : workers) {
            kit.system().receptionist().tell(Receptionist.register(GradientWorker.KEY, w.getRef()));
        }
        // the receptionist tells all its subscribers, the node among them, the same listing
        kit.system().receptionist().tell(Receptionist.subscribe(GradientWorker.KEY, listing.getRef()));
        while (listing.receiveMessage(TIMEOUT).getServiceInstances(GradientWorker.KEY).size() < workers.size()) {
            // an earlier listing
        }

        workers.forEach(w -> w.expectNoMessage(Duration.ofMillis(200)));
        assertFalse(ended.isDone(), "the node ends only with its run");
        run.completeExceptionally(new IllegalStateException("a run that could not start"));
        for (TestProbe<GradientWorker.Command> w : workers) {
            GradientWorker.Leave leave = w.expectMessageClass(GradientWorker.Leave.class, TIMEOUT);
            assertTrue(leave.reason().contains("a run that could not start"), leave.reason());
        }
        assertFalse(ended.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS), "the run ended here: it did not move");
        kit.createTestProbe().expectTerminated(node, TIMEOUT);
    }
}
