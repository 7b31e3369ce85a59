package dev.spiel4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.service.CheckpointStore;
import dev.spiel4j.service.SavedCheckpoint;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Data-parallel training on a Pekko Cluster with real worker JVMs on loopback ({@code train --workers N}; the
 * coordinator runs in this JVM): three micro-batches a step, on one, two (split unevenly) and three workers, must end
 * with the state a run in one process reaches, bit for bit, for SpIEL-AG, SpIEL-MA and LoRA (every replica's digest is
 * also compared with the coordinator's every two steps, which would fail the run), also when a worker is SIGKILLed
 * mid-step; and only the micro-batches' gradients and their sums cross the network.
 */
@Tag("slow")
class ScaleOutTest {
    private static final int MICRO_BATCHES = 3;

    @TempDir
    Path dir;

    @Test
    void spielAgOnTwoWorkersEndsBitIdenticalToOneProcess() throws IOException {
        // selection phases of two steps (2-3 and 5-6): micro-batch 0 of steps 2 and 5 chooses the candidates first
        assertSameAsAlone("spiel-ag", 2, "method.selection-steps=2");
    }

    @Test
    void loraOnOneWorkerEndsBitIdenticalToOneProcess() throws IOException {
        assertSameAsAlone("lora", 1);
    }

    @Test
    void spielMaOnThreeWorkersOneKilledMidStepEndsBitIdenticalToOneProcess() throws IOException {
        // the worker given step 3's last micro-batch SIGKILLs itself on receiving it: the other two compute it
        Trained cluster = assertSameAsAlone("spiel-ma", 3, "chaos.kill-worker-at-step=3");
        assertEquals(1, cluster.json.get("worker_failures").asInt());
        assertEquals(2, cluster.json.get("workers").asInt());
    }

    private Trained assertSameAsAlone(String method, int workers, String... overrides) throws IOException {
        SavedCheckpoint alone = train(method, method + "-alone", 0, overrides).checkpoint;
        Trained cluster = train(method, method + "-workers", workers, overrides);
        assertEquals(alone.state().digest(), cluster.checkpoint.state().digest(), method + " on " + workers
                + " worker(s)");
        if (cluster.json.get("worker_failures").asInt() == 0) {
            assertEquals(workers, cluster.json.get("workers").asInt());
            if (!method.equals("spiel-ag")) {
                // per step: each micro-batch's gradient comes in once, the sum goes out to every worker (4 bytes a value)
                long k = cluster.json.get("trainable_params").asLong();
                assertEquals(4 * k * (MICRO_BATCHES + workers), cluster.json.get("exchange_bytes_per_step").asLong());
            }
            // a round trip less the worker's own computation: positive, and a part of the step
            double exchange = cluster.json.get("exchange_seconds_per_step").asDouble();
            assertTrue(exchange > 0 && exchange < cluster.json.get("step_time_median_s").asDouble() * 2,
                    "exchange seconds per step " + exchange);
        }
        return cluster;
    }

    private record Trained(JsonNode json, SavedCheckpoint checkpoint) {
    }

    private Trained train(String method, String runId, int workers, String... overrides) throws IOException {
        Path config = dir.resolve("run.conf");
        Files.writeString(config, "spiel4j {}\n"); // reference.conf's settings, then the flags
        List<String> args = new ArrayList<>(List.of("train", "--config", config.toString(), "--run-id", runId,
                "--out", dir.toString(), "--model", SharedAssets.file("model/stories260K.gguf").toString(),
                "--data", SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl").toString(),
                "--method", method, "--steps", "6", "--batch-size", "2", "--seq-len", "64", "--json",
                "batch.micro-batches=" + MICRO_BATCHES, "eval.interval=0", "device=cpu",
                // SpIEL reselects at steps 3 and 6
                "method.reselection-interval=3", "method.selection-steps=1", "cluster.checksum-interval=2"));
        if (workers > 0) {
            args.addAll(List.of("--workers", Integer.toString(workers)));
        }
        args.addAll(List.of(overrides));
        JsonNode json = CliTest.run(args.toArray(String[]::new)).json();
        assertEquals("COMPLETED", json.get("outcome").asText(), json::toString);
        return new Trained(json, new CheckpointStore(dir.resolve(runId), 0).latest().orElseThrow());
    }
}
