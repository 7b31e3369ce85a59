package dev.spiel4j.hub;

import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.spiel4j.io.JsonFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * A Hugging Face Hub on loopback for tests, answering as the real one does: the revision endpoint ({@code sha},
 * {@code siblings}), {@code HEAD}/{@code GET} on resolve URLs with {@code X-Repo-Commit}, {@code ETag} (the git blob
 * sha1) and {@code Content-Length} for small files, and for LFS files ({@code .safetensors}, {@code .gguf},
 * {@code .bin}, {@code .model}) a 302 to a CDN (a second server, another origin) carrying {@code X-Linked-Etag}
 * (the sha256) and {@code X-Linked-Size}; the CDN honours {@code Range}. Errors carry the Hub's
 * {@code X-Error-Code}. It logs every request (the CDN's as {@code CDN GET <file> <range>}) and counts the bytes
 * of file content it sends, so tests can say what a resolve asked for.
 */
public final class HubStandIn implements AutoCloseable {
    private static final Set<String> LFS = Set.of(".safetensors", ".gguf", ".bin", ".model");

    /** One repository: revisions (branches, tags) to commits, commits to files. */
    public final class Repo {
        private final Map<String, String> revisions = new ConcurrentHashMap<>();
        private final Map<String, Map<String, byte[]>> commits = new ConcurrentHashMap<>();
        private volatile String token;

        /** A new commit holding {@code files}, which the revisions now point at; returns its hash. */
        public String commit(Map<String, byte[]> files, String... revisions) {
            String commit = hex(digest("SHA-1", (commits.size() + " " + files.keySet()).getBytes(StandardCharsets.UTF_8)));
            commits.put(commit, new TreeMap<>(files));
            for (String r : revisions) {
                this.revisions.put(r, commit);
            }
            files.forEach((path, bytes) -> {
                if (isLfs(path)) {
                    cdn.put(hex(digest("SHA-256", bytes)), new CdnFile(path, bytes));
                }
            });
            return commit;
        }

        /** Answers only requests with {@code Authorization: Bearer token}, as a private repository does. */
        public void requireToken(String token) {
            this.token = token;
        }

        private Optional<String> commitOf(String revision) {
            return commits.containsKey(revision) ? Optional.of(revision)
                    : Optional.ofNullable(revisions.get(revision));
        }
    }

    private record CdnFile(String path, byte[] bytes) {
    }

    private final HttpServer hub;
    private final HttpServer cdnServer;
    private final Map<String, Repo> repos = new ConcurrentHashMap<>();
    private final Map<String, CdnFile> cdn = new ConcurrentHashMap<>();
    private final Map<String, String> renamed = new ConcurrentHashMap<>();
    private final List<String> log = new CopyOnWriteArrayList<>();
    private final AtomicLong bytesSent = new AtomicLong();
    private volatile boolean cdnSawAuthorization;
    private volatile boolean honourRange = true;
    private volatile String corrupted;
    private volatile long cutAfter = -1;

    private HubStandIn() throws IOException {
        hub = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        cdnServer = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        hub.createContext("/", this::serveHub);
        cdnServer.createContext("/", this::serveCdn);
        hub.start();
        cdnServer.start();
    }

    public static HubStandIn start() {
        try {
            return new HubStandIn();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public URI endpoint() {
        return URI.create("http://127.0.0.1:" + hub.getAddress().getPort());
    }

    public Repo model(String repo) {
        return repos.computeIfAbsent("models/" + repo, k -> new Repo());
    }

    public Repo dataset(String repo) {
        return repos.computeIfAbsent("datasets/" + repo, k -> new Repo());
    }

    /** Requests for model repository {@code from} get a relative 307 to {@code to}, as after a rename. */
    public void renameModel(String from, String to) {
        renamed.put(from, to);
    }

    /** Every request since the last {@link #clearLog()}: {@code "HEAD /org/repo/resolve/main/config.json"}... */
    public List<String> log() {
        return List.copyOf(log);
    }

    /** Bytes of file content sent since the last {@link #clearLog()}. */
    public long bytesSent() {
        return bytesSent.get();
    }

    public void clearLog() {
        log.clear();
        bytesSent.set(0);
    }

    public boolean cdnSawAuthorization() {
        return cdnSawAuthorization;
    }

    /** When false the CDN answers a range request with the whole file (200), as some servers do. */
    public void honourRange(boolean honour) {
        honourRange = honour;
    }

    /** The CDN sends the file of this path with one byte changed (its etag stays the true sha256); null: none. */
    public void corrupt(String path) {
        corrupted = path;
    }

    /** The next CDN download ends after this many bytes of content, short of the file's end. */
    public void cutNextDownloadAfter(long bytes) {
        cutAfter = bytes;
    }

    /** The stories260K Hugging Face checkpoint's files, read from the shared assets directory. */
    public static Map<String, byte[]> filesOf(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            Map<String, byte[]> contents = new TreeMap<>();
            for (Path f : files.toList()) {
                contents.put(f.getFileName().toString(), Files.readAllBytes(f));
            }
            return contents;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        hub.stop(0);
        cdnServer.stop(0);
    }

    private void serveHub(HttpExchange ex) throws IOException {
        try {
            List<String> seg = Arrays.stream(ex.getRequestURI().getRawPath().split("/"))
                    .map(s -> URLDecoder.decode(s, StandardCharsets.UTF_8)).toList();
            log.add(ex.getRequestMethod() + " /" + String.join("/", seg.subList(1, seg.size())));
            if (seg.size() == 7 && seg.get(1).equals("api") && seg.get(5).equals("revision")) {
                serveInfo(ex, seg.get(2) + "/" + seg.get(3) + "/" + seg.get(4), seg.get(6));
                return;
            }
            int start = seg.get(1).equals("datasets") ? 2 : 1;
            String kind = start == 2 ? "datasets/" : "models/";
            if (seg.size() < start + 5 || !seg.get(start + 2).equals("resolve")) {
                error(ex, 404, "");
                return;
            }
            String movedTo = start == 1 ? renamed.get(seg.get(1) + "/" + seg.get(2)) : null;
            if (movedTo != null) {
                ex.getResponseHeaders().set("Location", "/" + movedTo + ex.getRequestURI().getRawPath()
                        .substring(seg.get(1).length() + seg.get(2).length() + 2));
                ex.sendResponseHeaders(307, -1);
                return;
            }
            serveFile(ex, kind + seg.get(start) + "/" + seg.get(start + 1), seg.get(start + 3),
                    String.join("/", seg.subList(start + 4, seg.size())));
        } finally {
            ex.close();
        }
    }

    private void serveInfo(HttpExchange ex, String key, String revision) throws IOException {
        Optional<String> commit = commitFor(ex, key, revision);
        if (commit.isEmpty()) {
            return;
        }
        Repo repo = repos.get(key);
        ObjectNode info = JsonFiles.MAPPER.createObjectNode();
        info.put("id", key.substring(key.indexOf('/') + 1));
        info.put("sha", commit.get());
        var siblings = info.putArray("siblings");
        repo.commits.get(commit.get()).keySet().forEach(f -> siblings.addObject().put("rfilename", f));
        byte[] body = info.toString().getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(200, body.length);
        ex.getResponseBody().write(body);
    }

    private void serveFile(HttpExchange ex, String key, String revision, String path) throws IOException {
        Optional<String> commit = commitFor(ex, key, revision);
        if (commit.isEmpty()) {
            return;
        }
        Repo repo = repos.get(key);
        byte[] bytes = repo.commits.get(commit.get()).get(path);
        if (bytes == null) {
            error(ex, 404, "EntryNotFound");
            return;
        }
        var h = ex.getResponseHeaders();
        h.set("X-Repo-Commit", commit.get());
        boolean head = ex.getRequestMethod().equals("HEAD");
        if (isLfs(path)) {
            String sha256 = hex(digest("SHA-256", bytes));
            h.set("ETag", "\"" + gitBlobSha1(("version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256
                    + "\nsize " + bytes.length + "\n").getBytes(StandardCharsets.UTF_8)) + "\"");
            h.set("X-Linked-Etag", "\"" + sha256 + "\"");
            h.set("X-Linked-Size", Long.toString(bytes.length));
            h.set("Location", "http://127.0.0.1:" + cdnServer.getAddress().getPort() + "/cdn/" + sha256
                    + "?signature=stand-in");
            ex.sendResponseHeaders(302, -1);
            return;
        }
        h.set("ETag", "\"" + gitBlobSha1(bytes) + "\"");
        if (head) {
            h.set("Content-Length", Long.toString(bytes.length));
            ex.sendResponseHeaders(200, -1);
            return;
        }
        ex.sendResponseHeaders(200, bytes.length);
        ex.getResponseBody().write(bytes);
        bytesSent.addAndGet(bytes.length);
    }

    /** The commit {@code revision} names in repository {@code key}; empty once an error has been answered. */
    private Optional<String> commitFor(HttpExchange ex, String key, String revision) throws IOException {
        Repo repo = authorized(ex, key);
        if (repo == null) {
            return Optional.empty();
        }
        Optional<String> commit = repo.commitOf(revision);
        if (commit.isEmpty()) {
            error(ex, 404, "RevisionNotFound");
        }
        return commit;
    }

    /** The repository if the request may see it; else the Hub's answer to a stranger has been sent. */
    private Repo authorized(HttpExchange ex, String key) throws IOException {
        Repo repo = repos.get(key);
        String auth = ex.getRequestHeaders().getFirst("Authorization");
        if (repo == null || (repo.token != null && !("Bearer " + repo.token).equals(auth))) {
            // the Hub does not reveal whether a private repository exists
            error(ex, auth == null ? 401 : 404, "RepoNotFound");
            return null;
        }
        return repo;
    }

    private void serveCdn(HttpExchange ex) throws IOException {
        try {
            if (ex.getRequestHeaders().containsKey("Authorization")) {
                cdnSawAuthorization = true;
            }
            String sha256 = ex.getRequestURI().getPath().substring("/cdn/".length());
            CdnFile file = cdn.get(sha256);
            String range = ex.getRequestHeaders().getFirst("Range");
            log.add("CDN " + ex.getRequestMethod() + " " + (file == null ? sha256 : file.path())
                    + (range == null ? "" : " " + range));
            if (file == null) {
                error(ex, 404, "");
                return;
            }
            byte[] bytes = file.bytes();
            if (file.path().equals(corrupted)) {
                bytes = bytes.clone();
                bytes[bytes.length / 2] ^= 1;
            }
            int from = 0;
            if (range != null && honourRange) {
                from = Integer.parseInt(range.replaceAll("bytes=(\\d+)-", "$1"));
                ex.getResponseHeaders().set("Content-Range",
                        "bytes " + from + "-" + (bytes.length - 1) + "/" + bytes.length);
            }
            long cut = cutAfter;
            cutAfter = -1;
            // a cut response is well framed but short, as when a proxy gives up: the client sees the file end early
            int length = cut >= 0 ? (int) Math.min(cut, bytes.length - from) : bytes.length - from;
            ex.sendResponseHeaders(from > 0 ? 206 : 200, length);
            ex.getResponseBody().write(bytes, from, length);
            bytesSent.addAndGet(length);
        } finally {
            ex.close();
        }
    }

    private static void error(HttpExchange ex, int status, String code) throws IOException {
        if (!code.isEmpty()) {
            ex.getResponseHeaders().set("X-Error-Code", code);
        }
        ex.sendResponseHeaders(status, -1);
    }

    private static boolean isLfs(String path) {
        return LFS.stream().anyMatch(path::endsWith);
    }

    static String gitBlobSha1(byte[] bytes) {
        byte[] header = ("blob " + bytes.length + "\0").getBytes(StandardCharsets.UTF_8);
        byte[] all = Arrays.copyOf(header, header.length + bytes.length);
        System.arraycopy(bytes, 0, all, header.length, bytes.length);
        return hex(digest("SHA-1", all));
    }

    static String sha256(byte[] bytes) {
        return hex(digest("SHA-256", bytes));
    }

    private static byte[] digest(String algorithm, byte[] bytes) {
        try {
            return MessageDigest.getInstance(algorithm).digest(bytes);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String hex(byte[] bytes) {
        return java.util.HexFormat.of().formatHex(bytes);
    }
}
