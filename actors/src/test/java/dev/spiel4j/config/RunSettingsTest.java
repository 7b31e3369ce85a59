package dev.spiel4j.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import dev.spiel4j.hub.HubClient;
import dev.spiel4j.hub.HubSettings;
import dev.spiel4j.hub.HubStandIn;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.kafka.ProducerSettings;
import dev.spiel4j.train.DeviceSetting;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RunSettingsTest {

    /** The repository's config/ folder (tests run in the actors module directory). */
    private static final Path CONFIG_DIR = Path.of("..", "config");

    @Test
    void referenceDefaultsAreValid() {
        RunSettings s = RunSettings.from(RunSettings.load(null, List.of()));
        assertEquals("spiel-ag", s.method().name());
        assertEquals(8, s.method().budget().matchLoraRank());
        assertEquals(20, s.method().reselectionInterval());
        assertEquals(5, s.method().selectionSteps());
        assertEquals(0.2, s.method().replaceFraction());
        assertEquals(512 * 1024, s.checkpoint().chunkSize());
        assertTrue(s.kafka().embedded());
        assertEquals("spiel4j.checkpoints", s.kafka().topics().checkpoints());
        assertEquals(Duration.ofSeconds(30), s.kafka().outageAfter());
        assertEquals(Duration.ofHours(24), s.kafka().deliveryTimeout());
        assertEquals(64L << 20, s.kafka().bufferSize());
        assertEquals(DeviceSetting.AUTO, s.device());
        assertEquals(3, s.supervision().maxRestartsWithoutProgress());
        assertEquals(Optional.empty(), s.eval().data());
        assertTrue(s.run().id().startsWith("run-"), s.run().id());
        ProducerSettings producer = s.producerSettings("127.0.0.1:9092", "test");
        assertEquals(1 << 20, producer.maxRecordBytes());
        assertEquals(Duration.ofSeconds(30), producer.outageAfter());
        assertEquals(Duration.ofHours(24), producer.deliveryTimeout());
    }

    @ParameterizedTest
    @ValueSource(strings = {"quickstart.conf", "continual-kafka.conf", "llama2-7b-paper.conf"})
    void exampleConfigurationsAreValid(String name) {
        Path file = CONFIG_DIR.resolve(name);
        assertTrue(Files.isRegularFile(file), file + " exists");
        RunSettings s = RunSettings.from(RunSettings.load(file, List.of()));
        assertTrue(s.method().sparse());
    }

    @Test
    void paperConfigurationCarriesThePaperHyperparameters() {
        RunSettings s = RunSettings.from(RunSettings.load(CONFIG_DIR.resolve("llama2-7b-paper.conf"), List.of()));
        assertEquals(1e-4, s.optimizer().lr());
        assertEquals(30.0, s.optimizer().weightDecay());
        assertEquals(64, s.method().budget().matchLoraRank());
        assertEquals(128, s.batch().size() * s.batch().microBatches());
        assertEquals(2, s.schedule().epochs());
        assertEquals(0.03, s.schedule().warmupFraction());
        assertEquals(2048, s.data().seqLen());
    }

    @Test
    void eachMethodGetsItsOwnRateUnlessOneIsGiven() {
        Path paper = CONFIG_DIR.resolve("llama2-7b-paper.conf");
        // The paper's grid: SM3 (spiel-ma) at 10x Adam's rate, LoRA with SpIEL-AG's, (IA)3 at 3x.
        assertEquals(1e-3, lr(paper, "method.name=spiel-ma"));
        assertEquals(1e-4, lr(paper, "method.name=lora"));
        assertEquals(3e-4, lr(paper, "method.name=ia3"));
        assertEquals(2e-5, lr(paper, "method.name=full"));
        assertEquals(5e-3, lr(paper, "method.name=spiel-ma", "optimizer.lr=5e-3"), "an explicit rate wins");
        assertEquals(7e-3, lr(paper, "method.name=spiel-ma", "optimizer.lr-by-method.spiel-ma=7e-3"));
        assertBad("spiel4j.optimizer.lr-by-method.spiel-ma", "optimizer.lr-by-method.spiel-ma=-1");
        assertBad("spiel4j.optimizer.lr-by-method.adapters", "optimizer.lr-by-method.adapters=1e-3");
        assertBad("spiel4j.optimizer.lr", "optimizer.lr=automatic");
        // the quickstart carries the rates tuned for its small model
        Path quickstart = CONFIG_DIR.resolve("quickstart.conf");
        assertEquals(3e-3, lr(quickstart));
        assertEquals(3e-2, lr(quickstart, "method.name=spiel-ma"));
        assertEquals(2e-3, lr(quickstart, "optimizer.lr=2e-3"));
    }

    private static double lr(Path file, String... overrides) {
        return RunSettings.from(RunSettings.load(file, List.of(overrides))).optimizer().lr();
    }

    @Test
    void continualConfigurationReadsKafkaForever() {
        RunSettings s = RunSettings.from(RunSettings.load(CONFIG_DIR.resolve("continual-kafka.conf"), List.of()));
        assertEquals(RunSettings.Source.KAFKA, s.data().source());
        assertEquals(0, s.schedule().steps());
        assertEquals(200, s.checkpoint().interval());
    }

    @Test
    void overridesWinOverTheFileAndAcceptShortKeys() {
        RunSettings s = RunSettings.from(RunSettings.load(CONFIG_DIR.resolve("quickstart.conf"),
                List.of("batch.size=4", "spiel4j.optimizer.lr=2e-3", "device=gpu:1", "run.id=my-run",
                        "kafka.bootstrap-servers=\"broker:9092\"")));
        assertEquals(4, s.batch().size());
        assertEquals(2e-3, s.optimizer().lr());
        assertEquals(DeviceSetting.gpu(1), s.device());
        assertEquals(Path.of("runs", "my-run"), s.run().runDir());
        assertEquals("broker:9092", s.kafka().bootstrapServers());
    }

    @Test
    void invalidValuesNameTheirKey() {
        assertBad("spiel4j.batch.size", "batch.size=0");
        assertBad("spiel4j.device", "device=gpu");
        assertBad("spiel4j.method.name", "method.name=adapters");
        assertBad("spiel4j.method.budget", "method.budget.density=0.01");
        assertBad("spiel4j.method.selection-steps", "method.selection-steps=30");
        assertBad("spiel4j.run.id", "run.id=\"a/b\"");
        assertBad("spiel4j.checkpoint.chunk-size", "checkpoint.chunk-size=64MiB");
        assertBad("spiel4j.optimizer.lr", "optimizer.lr=fast");
        assertBad("spiel4j.bach", "bach.size=4");
        assertBad("spiel4j.kafka.topic-prefix", "kafka.topic-prefix=\"my topics\"");
        assertBad("spiel4j.kafka.max-backoff", "kafka.max-backoff=10ms");
        assertBad("spiel4j.supervision.max-restarts-without-progress", "supervision.max-restarts-without-progress=-1");
        assertBad("spiel4j.debug.fail-at-steps", "debug.fail-at-steps=7");
        assertThrows(IllegalArgumentException.class, () -> RunSettings.load(null, List.of("batch.size")));
    }

    private static void assertBad(String key, String override) {
        ConfigException e = assertThrows(ConfigException.class,
                () -> RunSettings.from(RunSettings.load(null, List.of(override))), override);
        assertTrue(e.getMessage().contains(key), override + " -> " + e.getMessage());
    }

    @Test
    void hubLocationsInTheFileOrOverridesBecomeLocalPathsBeforeTheSettingsAreRead(@TempDir Path dir)
            throws IOException {
        try (HubStandIn hub = HubStandIn.start()) {
            String commit = hub.model("org/stories260K")
                    .commit(HubStandIn.filesOf(SharedAssets.file("model/stories260K-hf")), "main");
            byte[] text = "Once upon a time.\n".getBytes(StandardCharsets.UTF_8);
            String data = hub.dataset("org/tiny").commit(Map.of("train.txt", text, "eval.txt", text), "main");
            Path file = Files.writeString(dir.resolve("run.conf"), "spiel4j.model.path = \"hf://org/stories260K\"\n"
                    + "spiel4j.eval.data = \"hf://datasets/org/tiny/eval.txt\"\n");
            Config config = RunSettings.load(file, List.of("data.train=\"hf://datasets/org/tiny/train.txt\""));

            String m = assertThrows(ConfigException.class, () -> RunSettings.from(config)).getMessage();
            assertTrue(m.contains("spiel4j.model.path") && m.contains("must turn it into its local copy first"), m);

            Path cache = dir.resolve("hub");
            HubClient client = new HubClient(new HubSettings(hub.endpoint(), Optional.empty(), false, cache),
                    line -> { });
            RunSettings s = RunSettings.from(RunSettings.resolveHubLocations(config, client));
            assertEquals(cache.resolve("models--org--stories260K/snapshots/" + commit), s.model().path());
            assertEquals(cache.resolve("datasets--org--tiny/snapshots/" + data + "/train.txt"), s.data().train());
            assertEquals(Optional.of(cache.resolve("datasets--org--tiny/snapshots/" + data + "/eval.txt")),
                    s.eval().data());

            Config local = RunSettings.load(null, List.of());
            assertEquals(local, RunSettings.resolveHubLocations(local, client), "local paths stay as they are");
            Config malformed = RunSettings.load(null, List.of("model.path=\"hf://gpt2\""));
            m = assertThrows(ConfigException.class, () -> RunSettings.resolveHubLocations(malformed, client))
                    .getMessage();
            assertTrue(m.contains("spiel4j.model.path") && m.contains("hf://gpt2: expected hf://ORG/REPO"), m);
        }
    }
}
