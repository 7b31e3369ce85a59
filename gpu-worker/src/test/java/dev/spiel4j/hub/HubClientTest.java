package dev.spiel4j.hub;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.loader.HfCheckpoint;
import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.model.LoadedModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The real client against {@link HubStandIn}: what it asks, what lands in the cache, and every refusal. */
class HubClientTest {
    static final Path HF = SharedAssets.file("model/stories260K-hf");
    static final Path GGUF = SharedAssets.file("model/stories260K.gguf");
    static final String MODEL = "hf://org/stories260K";
    static final String GGUF_FILE = "hf://org/stories260K-gguf/stories260K.gguf";

    static HubStandIn hub;
    static Map<String, byte[]> hfFiles;
    static String mainCommit;
    static byte[] gguf;

    @TempDir
    Path cache;
    final List<String> progress = new ArrayList<>();

    @BeforeAll
    static void startHub() throws IOException {
        hub = HubStandIn.start();
        hfFiles = HubStandIn.filesOf(HF);
        Map<String, byte[]> repo = new TreeMap<>(hfFiles);
        // what a checkpoint does not need, and must not be fetched
        repo.put("README.md", "# stories260K\n".getBytes(StandardCharsets.UTF_8));
        repo.put("pytorch_model.bin", new byte[4096]);
        repo.put("onnx/model.onnx", new byte[2048]);
        mainCommit = hub.model("org/stories260K").commit(repo, "main");
        gguf = Files.readAllBytes(GGUF);
        hub.model("org/stories260K-gguf").commit(Map.of("stories260K.gguf", gguf, "README.md", new byte[10]), "main");
    }

    @AfterAll
    static void stopHub() {
        hub.close();
    }

    @BeforeEach
    void resetHub() {
        hub.clearLog();
        hub.honourRange(true);
        hub.corrupt(null);
    }

    HubClient client() {
        return client(false, Optional.empty());
    }

    HubClient client(boolean offline, Optional<String> token) {
        return new HubClient(new HubSettings(hub.endpoint(), token, offline, cache), progress::add);
    }

    Path repoDir(String folder) {
        return cache.resolve(folder);
    }

    @Test
    void aCheckpointRepositoryBringsOnlyWhatACheckpointNeedsInHuggingfaceHubsLayout() throws IOException {
        Path snapshot = client().resolve(MODEL);
        Path repo = repoDir("models--org--stories260K");
        assertEquals(repo.resolve("snapshots").resolve(mainCommit), snapshot);
        assertEquals(mainCommit, Files.readString(repo.resolve("refs/main")));

        List<String> downloaded = hub.log().stream().filter(l -> l.startsWith("GET /org/") || l.startsWith("CDN"))
                .map(l -> l.replaceAll(".*/", "").replaceAll("^CDN GET ", "")).distinct().sorted().toList();
        assertEquals(hfFiles.keySet().stream().sorted().toList(), downloaded, hub.log().toString());
        assertEquals(hfFiles.values().stream().mapToLong(b -> b.length).sum(), hub.bytesSent(), "each file once");
        assertTrue(hub.log().stream().noneMatch(l -> l.contains("README") || l.contains(".bin") || l.contains("onnx")),
                hub.log().toString());
        assertTrue(hub.log().stream().filter(l -> l.startsWith("HEAD")).allMatch(l -> l.contains(mainCommit)),
                "files are asked for at the pinned commit: " + hub.log());

        try (Stream<Path> blobs = Files.list(repo.resolve("blobs"))) {
            assertEquals(hfFiles.size(), blobs.count());
        }
        for (var f : hfFiles.entrySet()) {
            Path pointer = snapshot.resolve(f.getKey());
            assertTrue(Files.isSymbolicLink(pointer), pointer + " is a link");
            String etag = f.getKey().endsWith(".safetensors") || f.getKey().endsWith(".model")
                    ? HubStandIn.sha256(f.getValue()) : HubStandIn.gitBlobSha1(f.getValue());
            assertEquals(Path.of("..", "..", "blobs", etag), Files.readSymbolicLink(pointer));
            assertTrue(java.util.Arrays.equals(f.getValue(), Files.readAllBytes(pointer)), f.getKey());
        }
        assertTrue(progress.stream().anyMatch(l -> l.equals(MODEL + "/model.safetensors: 1.0 MB downloaded")),
                progress.toString());

        LoadedModel fromHub = ModelLoader.load(snapshot);
        assertEquals(ModelLoader.load(HF).fingerprint(), fromHub.fingerprint());

        hub.clearLog();
        assertEquals(snapshot, client().resolve(MODEL));
        assertEquals(List.of("GET /api/models/org/stories260K/revision/main"), hub.log(),
                "a second use only asks where main points");
        assertEquals(0, hub.bytesSent());

        hub.clearLog();
        assertEquals(snapshot, client().resolve(MODEL + "@" + mainCommit));
        assertEquals(List.of(), hub.log(), "a cached commit needs no request");
    }

    @Test
    void aShardedCheckpointBringsItsIndexAndEveryShard(@TempDir Path build) throws IOException {
        LoadedModel reference = ModelLoader.load(HF);
        Map<String, byte[]> files = new TreeMap<>();
        for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json")) {
            files.put(f, hfFiles.get(f));
        }
        List<HostTensor> tensors = new ArrayList<>(reference.tensors().values());
        ObjectNode index = JsonFiles.MAPPER.createObjectNode();
        ObjectNode weightMap = index.putObject("weight_map");
        for (int s = 0; s < 2; s++) {
            String shard = "model-0000" + (s + 1) + "-of-00002.safetensors";
            List<HostTensor> part = tensors.subList(s * tensors.size() / 2, (s + 1) * tensors.size() / 2);
            part.forEach(t -> weightMap.put(t.name(), shard));
            SafeTensors.write(build.resolve(shard), part, Map.of("format", "pt"));
            files.put(shard, Files.readAllBytes(build.resolve(shard)));
        }
        files.put(HfCheckpoint.INDEX, index.toString().getBytes(StandardCharsets.UTF_8));
        hub.model("org/sharded").commit(files, "main");

        Path snapshot = client().resolve("hf://org/sharded");
        assertEquals(reference.fingerprint(), ModelLoader.load(snapshot).fingerprint());
        assertEquals(files.size(), hub.log().stream().filter(l -> l.startsWith("HEAD")).count(), hub.log().toString());
    }

    @Test
    void aFileOfAModelRepositoryAndOfADatasetRepository() throws IOException {
        Path file = client().resolve(GGUF_FILE);
        assertEquals(ModelLoader.load(GGUF).fingerprint(), ModelLoader.load(file).fingerprint());
        assertEquals(List.of("HEAD /org/stories260K-gguf/resolve/main/stories260K.gguf",
                "GET /org/stories260K-gguf/resolve/" + file.getParent().getFileName() + "/stories260K.gguf",
                "CDN GET stories260K.gguf"), hub.log());
        hub.clearLog();
        assertEquals(file, client().resolve(GGUF_FILE));
        assertEquals(List.of("HEAD /org/stories260K-gguf/resolve/main/stories260K.gguf"), hub.log(),
                "a second use asks where main points, and downloads nothing");

        byte[] data = Files.readAllBytes(SharedAssets.file("data/dolly_hhrlhf_train_small_1k.jsonl"));
        String commit = hub.dataset("org/dolly").commit(Map.of("train/dolly.jsonl", data, "README.md", new byte[1]),
                "main");
        Path local = client().resolve("hf://datasets/org/dolly/train/dolly.jsonl");
        Path repo = repoDir("datasets--org--dolly");
        assertEquals(repo.resolve("snapshots/" + commit + "/train/dolly.jsonl"), local);
        assertEquals(Path.of("..", "..", "..", "blobs", HubStandIn.gitBlobSha1(data)), Files.readSymbolicLink(local));
        assertTrue(java.util.Arrays.equals(data, Files.readAllBytes(local)));
        assertTrue(hub.log().contains("HEAD /datasets/org/dolly/resolve/main/train/dolly.jsonl"), hub.log().toString());
    }

    @Test
    void aRevisionPinsItsCommit() throws IOException {
        var repo = hub.model("org/notes");
        String v1 = repo.commit(Map.of("notes.txt", "one".getBytes(StandardCharsets.UTF_8)), "v1");
        String v2 = repo.commit(Map.of("notes.txt", "two".getBytes(StandardCharsets.UTF_8)), "main", "refs/pr/1");
        assertEquals("one", Files.readString(client().resolve("hf://org/notes@v1/notes.txt")));
        assertEquals("two", Files.readString(client().resolve("hf://org/notes/notes.txt")));
        assertEquals("two", Files.readString(client().resolve("hf://org/notes@refs%2Fpr%2F1/notes.txt")));
        Path refs = repoDir("models--org--notes/refs");
        assertEquals(v1, Files.readString(refs.resolve("v1")));
        assertEquals(v2, Files.readString(refs.resolve("main")));
        assertEquals(v2, Files.readString(refs.resolve("refs/pr/1")));
        hub.clearLog();
        assertEquals("one", Files.readString(client().resolve("hf://org/notes@" + v1 + "/notes.txt")));
        assertEquals(List.of(), hub.log());

        hub.renameModel("org/old-notes", "org/notes");
        hub.clearLog();
        assertEquals("two", Files.readString(client().resolve("hf://org/old-notes/notes.txt")));
        assertEquals("HEAD /org/notes/resolve/main/notes.txt", hub.log().get(1), "a rename's relative redirect is"
                + " followed: " + hub.log());

        String m = assertThrows(HubException.class, () -> client().resolve("hf://org/notes@v3/notes.txt"))
                .getMessage();
        assertTrue(m.startsWith("hf://org/notes@v3/notes.txt: no such revision 'v3' in org/notes (HTTP 404"), m);
        m = assertThrows(HubException.class, () -> client().resolve("hf://org/notes/other.txt")).getMessage();
        assertTrue(m.contains("no such file 'other.txt' in org/notes at main"), m);
        m = assertThrows(HubException.class, () -> client().resolve("hf://org/nothing")).getMessage();
        assertTrue(m.startsWith("hf://org/nothing: no such repository org/nothing, or it is private or gated: set"
                + " HF_TOKEN"), m);
    }

    @Test
    void offlineResolvesFromTheCacheWithoutARequestAndNamesWhatIsMissing() throws IOException {
        Path snapshot = client().resolve(MODEL);
        hub.clearLog();
        assertEquals(snapshot, client(true, Optional.empty()).resolve(MODEL));
        assertEquals(List.of(), hub.log());

        String m = assertThrows(HubException.class, () -> client(true, Optional.empty()).resolve(GGUF_FILE))
                .getMessage();
        assertTrue(m.startsWith(GGUF_FILE + ": not in the Hub cache (HF_HUB_OFFLINE is set; "), m);
        assertTrue(m.contains("has no refs/main"), m);

        Files.delete(snapshot.resolve("model.safetensors"));
        m = assertThrows(HubException.class, () -> client(true, Optional.empty()).resolve(MODEL)).getMessage();
        assertTrue(m.contains("snapshot " + mainCommit + " lacks model.safetensors"), m);
        assertEquals(List.of(), hub.log());

        // online again: the missing file comes back from its blob, which is still there, without a download
        assertEquals(snapshot, client().resolve(MODEL));
        assertEquals(0, hub.bytesSent(), hub.log().toString());
        assertTrue(Files.isSymbolicLink(snapshot.resolve("model.safetensors")));
    }

    @Test
    void anUnreachableHubFallsBackToTheCache() throws IOException {
        Path snapshot = client().resolve(MODEL);
        int closedPort;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closedPort = s.getLocalPort();
        }
        HubSettings down = new HubSettings(URI.create("http://127.0.0.1:" + closedPort), Optional.empty(), false,
                cache);
        assertEquals(snapshot, new HubClient(down, progress::add).resolve(MODEL));
        assertTrue(progress.get(progress.size() - 1).startsWith(MODEL + ": using the cached copy, since the Hub did not"
                + " answer: cannot reach http://127.0.0.1:" + closedPort), progress.toString());
        String m = assertThrows(HubException.class, () -> new HubClient(down, progress::add).resolve(GGUF_FILE))
                .getMessage();
        assertTrue(m.startsWith(GGUF_FILE + ": not in the Hub cache (cannot reach"), m);
    }

    @Test
    void anInterruptedDownloadResumesWhereItStopped() throws IOException {
        hub.cutNextDownloadAfter(300_000);
        String m = assertThrows(HubException.class, () -> client().resolve(GGUF_FILE)).getMessage();
        assertTrue(m.startsWith(GGUF_FILE + ": the download stopped after 300000 bytes of 1.2 MB"), m);
        assertTrue(m.endsWith(".incomplete is kept and the next attempt resumes it"), m);
        Path blobs = repoDir("models--org--stories260K-gguf/blobs");
        Path partial = blobs.resolve(HubStandIn.sha256(gguf) + ".incomplete");
        assertEquals(300_000, Files.size(partial));

        hub.clearLog();
        Path file = client().resolve(GGUF_FILE);
        assertTrue(hub.log().contains("CDN GET stories260K.gguf bytes=300000-"), hub.log().toString());
        assertEquals(gguf.length - 300_000, hub.bytesSent());
        assertTrue(java.util.Arrays.equals(gguf, Files.readAllBytes(file)));
        assertFalse(Files.exists(partial));
        assertTrue(progress.stream().anyMatch(l -> l.contains("resuming after 300000 bytes")), progress.toString());
    }

    @Test
    void aServerIgnoringTheRangeSendsEverythingAndTheFileIsStillRight() throws IOException {
        Path blobs = Files.createDirectories(repoDir("models--org--stories260K-gguf/blobs"));
        Files.write(blobs.resolve(HubStandIn.sha256(gguf) + ".incomplete"), java.util.Arrays.copyOf(gguf, 1000));
        hub.honourRange(false);
        Path file = client().resolve(GGUF_FILE);
        assertEquals(gguf.length, hub.bytesSent());
        assertTrue(java.util.Arrays.equals(gguf, Files.readAllBytes(file)));
    }

    @Test
    void aDownloadNotMatchingItsSha256IsDeletedAndRefused() throws IOException {
        hub.corrupt("stories260K.gguf");
        String m = assertThrows(HubException.class, () -> client().resolve(GGUF_FILE)).getMessage();
        String sha = HubStandIn.sha256(gguf);
        assertTrue(m.startsWith(GGUF_FILE + ": the downloaded bytes have sha256 "), m);
        assertTrue(m.contains("but the Hub says " + sha + "; the download was deleted"), m);
        Path repo = repoDir("models--org--stories260K-gguf");
        try (Stream<Path> blobs = Files.list(repo.resolve("blobs"))) {
            assertEquals(List.of(), blobs.toList());
        }
        assertFalse(Files.exists(repo.resolve("snapshots")), "nothing is placed in a snapshot");
        hub.corrupt(null);
        assertTrue(java.util.Arrays.equals(gguf, Files.readAllBytes(client().resolve(GGUF_FILE))));
    }

    @Test
    void aTokenGoesToTheHubButNotToTheCdn() throws IOException {
        hub.model("org/private").commit(Map.of("stories260K.gguf", gguf), "main");
        hub.model("org/private").requireToken("hf_secret");
        String m = assertThrows(HubException.class,
                () -> client().resolve("hf://org/private/stories260K.gguf")).getMessage();
        assertTrue(m.contains("or it is private or gated: set HF_TOKEN to a token that can read it (HTTP 401"), m);
        m = assertThrows(HubException.class, () -> client(false, Optional.of("hf_wrong"))
                .resolve("hf://org/private/stories260K.gguf")).getMessage();
        assertTrue(m.contains("the token given (HF_TOKEN or the stored login) may not read it"), m);

        Properties endpoint = new Properties();
        endpoint.setProperty(HubSettings.ENDPOINT_PROPERTY, hub.endpoint().toString());
        Path home = cache.resolve("home");
        HubSettings settings = HubSettings.from(Map.of("HF_TOKEN", "hf_secret", "HF_HOME", home.toString()), endpoint);
        assertEquals(Optional.of("hf_secret"), settings.token());
        assertEquals(home.resolve("hub"), settings.cache());
        assertFalse(settings.toString().contains("hf_secret"), settings.toString());
        Path file = new HubClient(settings, progress::add).resolve("hf://org/private/stories260K.gguf");
        assertTrue(java.util.Arrays.equals(gguf, Files.readAllBytes(file)));
        assertFalse(hub.cdnSawAuthorization(), "the token must not leave the Hub's host");
    }

    @Test
    void settingsReadTheVariablesHuggingfaceHubReads() throws IOException {
        Path home = Files.createDirectories(cache.resolve("home"));
        Files.writeString(home.resolve("token"), "hf_stored\n");
        HubSettings s = HubSettings.from(Map.of("HF_HOME", home.toString(), "HF_HUB_OFFLINE", "yes",
                "HF_ENDPOINT", "https://mirror.example/"), new Properties());
        assertEquals(URI.create("https://mirror.example"), s.endpoint());
        assertEquals(Optional.of("hf_stored"), s.token());
        assertTrue(s.offline());
        assertEquals(home.resolve("hub"), s.cache());

        Properties props = new Properties();
        props.setProperty(HubSettings.CACHE_PROPERTY, "/elsewhere");
        props.setProperty(HubSettings.OFFLINE_PROPERTY, "false");
        s = HubSettings.from(Map.of("HF_HUB_CACHE", "/shared/hub", "XDG_CACHE_HOME", "/xdg"), props);
        assertEquals(Path.of("/elsewhere"), s.cache());
        assertFalse(s.offline());
        assertEquals(URI.create(HubSettings.DEFAULT_ENDPOINT), s.endpoint());
        s = HubSettings.from(Map.of("XDG_CACHE_HOME", "/xdg", "TRANSFORMERS_OFFLINE", "1"), new Properties());
        assertEquals(Path.of("/xdg/huggingface/hub"), s.cache());
        assertTrue(s.offline());
    }

    @Test
    void aRepositoryWithPickledWeightsOnlyIsRefusedBeforeAnyDownload() {
        Map<String, byte[]> files = new LinkedHashMap<>();
        files.put("config.json", hfFiles.get("config.json"));
        files.put("tokenizer.json", hfFiles.get("tokenizer.json"));
        files.put("pytorch_model.bin", new byte[100]);
        hub.model("org/pickled").commit(files, "main");
        String m = assertThrows(HubException.class, () -> client().resolve("hf://org/pickled")).getMessage();
        assertTrue(m.startsWith("hf://org/pickled: the repository has no model.safetensors or"
                + " model.safetensors.index.json; its weights are PyTorch pickles only (pytorch_model.bin), which"
                + " spiel4j never loads"), m);
        assertEquals(List.of("GET /api/models/org/pickled/revision/main"), hub.log());

        String ggufOnly = assertThrows(HubException.class, () -> client().resolve("hf://org/stories260K-gguf"))
                .getMessage();
        assertTrue(ggufOnly.endsWith("it holds GGUF files: name one, e.g. " + GGUF_FILE), ggufOnly);
    }
}
