package dev.spiel4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.hub.HubSettings;
import dev.spiel4j.hub.HubStandIn;
import dev.spiel4j.io.SharedAssets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.spiel4j.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code hf://} locations on the command line, resolved by the real client against {@link HubStandIn}: the endpoint
 * and the cache come from the system properties {@link HubSettings} reads (a test cannot set environment variables).
 */
class HubCliTest {
    private static final String HF = SharedAssets.file("model/stories260K-hf").toString();
    private static final String GGUF = SharedAssets.file("model/stories260K.gguf").toString();
    private static final String TEXT = SharedAssets.file("data/tinystories_valid_head.txt").toString();
    private static final String HUB_MODEL = "hf://org/stories260K";
    private static final String HUB_GGUF = "hf://org/stories260K-gguf/stories260K.gguf";
    private static final String HUB_TEXT = "hf://datasets/org/tinystories/valid.txt";
    private static final List<String> PROPERTIES = List.of(HubSettings.ENDPOINT_PROPERTY, HubSettings.CACHE_PROPERTY,
            HubSettings.OFFLINE_PROPERTY);

    @TempDir
    static Path cache;
    static HubStandIn hub;

    @BeforeAll
    static void startHub() throws IOException {
        hub = HubStandIn.start();
        hub.model("org/stories260K").commit(HubStandIn.filesOf(Path.of(HF)), "main");
        hub.model("org/stories260K-gguf").commit(Map.of("stories260K.gguf", Files.readAllBytes(Path.of(GGUF))),
                "main");
        hub.dataset("org/tinystories").commit(Map.of("valid.txt", Files.readAllBytes(Path.of(TEXT))), "main");
        System.setProperty(HubSettings.ENDPOINT_PROPERTY, hub.endpoint().toString());
        System.setProperty(HubSettings.CACHE_PROPERTY, cache.toString());
    }

    @AfterAll
    static void stopHub() {
        PROPERTIES.forEach(System::clearProperty);
        hub.close();
    }

    @BeforeEach
    void online() {
        System.setProperty(HubSettings.OFFLINE_PROPERTY, "false"); // whatever HF_HUB_OFFLINE says here
        hub.clearLog();
    }

    @Test
    void inspectAndGenerateTakeAHubCheckpointAsTheLocalOne() throws IOException {
        JsonNode local = run("inspect", HF, "--json").json();
        CliTest.Run first = run("inspect", HUB_MODEL, "--json");
        JsonNode fromHub = first.json();
        assertEquals(local.get("fingerprint"), fromHub.get("fingerprint"));
        assertTrue(fromHub.get("source").asText().startsWith(cache.resolve("models--org--stories260K/snapshots")
                .toString()), fromHub.toString());
        assertTrue(first.err().contains(HUB_MODEL + "/model.safetensors: 1.0 MB downloaded"), first.err());

        hub.clearLog();
        List<String> generate = List.of("generate", "--prompt", "Lily and", "--max-new-tokens", "10", "--greedy",
                "--json");
        JsonNode hubIds = runWith(generate, "--model", HUB_MODEL).json().get("ids");
        assertEquals(List.of("GET /api/models/org/stories260K/revision/main"), hub.log(), "nothing downloaded twice");
        assertEquals(runWith(generate, "--model", HF).json().get("ids"), hubIds);
    }

    @Test
    void scoreTakesAHubGgufFileAndAHubDatasetFile() throws IOException {
        List<String> score = List.of("score", "--seq-len", "511", "--max-chars", "12000", "--max-chunks", "2",
                "--json");
        JsonNode fromHub = runWith(score, "--model", HUB_GGUF, "--data", HUB_TEXT).json();
        assertEquals(runWith(score, "--model", GGUF, "--data", TEXT).json(), fromHub);
    }

    @Test
    void malformedMissingAndOfflineLocationsAreNamed() {
        CliTest.Run malformed = run("generate", "--model", "hf://gpt2", "--prompt", "", "--max-new-tokens", "1");
        assertEquals(2, malformed.code(), malformed.err());
        assertTrue(malformed.err().contains("--model: hf://gpt2: expected hf://ORG/REPO"), malformed.err());

        CliTest.Run missing = run("inspect", "hf://org/missing", "--json");
        assertEquals(1, missing.code(), missing.err());
        assertTrue(missing.err().contains("spiel4j inspect: error: hf://org/missing: no such repository org/missing"),
                missing.err());

        hub.clearLog();
        System.setProperty(HubSettings.OFFLINE_PROPERTY, "true");
        CliTest.Run offline = run("score", "--model", GGUF, "--data", "hf://datasets/org/never/x.txt",
                "--seq-len", "8");
        assertEquals(1, offline.code(), offline.err());
        assertTrue(offline.err().contains("hf://datasets/org/never/x.txt: not in the Hub cache (HF_HUB_OFFLINE is"
                + " set"), offline.err());
        assertEquals(List.of(), hub.log());
    }

    @Test
    @Tag("kafka")
    void trainFineTunesAHubModelOnHubData(@TempDir Path dir) throws IOException {
        Path config = Files.writeString(dir.resolve("run.conf"), "spiel4j.device = cpu\n");
        CliTest.Run train = run("train", "--config", config.toString(), "--model", HUB_GGUF, "--data", HUB_TEXT,
                "--out", dir.resolve("runs").toString(), "--run-id", "hub", "--steps", "2", "--batch-size", "2",
                "--seq-len", "32", "eval.interval=0", "--json");
        assertEquals("COMPLETED", train.json().get("outcome").asText(), train.err());
    }

    private static CliTest.Run runWith(List<String> command, String... more) {
        return run(java.util.stream.Stream.concat(command.stream(), java.util.Arrays.stream(more))
                .toArray(String[]::new));
    }
}
