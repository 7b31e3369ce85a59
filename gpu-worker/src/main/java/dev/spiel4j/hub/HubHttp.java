package dev.spiel4j.hub;

import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.io.JsonFiles;

import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandler;
import java.net.http.HttpResponse.BodyHandlers;
import java.net.http.HttpResponse.BodySubscribers;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The Hub's HTTP protocol, as huggingface_hub speaks it: the revision endpoint for a repository's commit and file
 * list, {@code HEAD} on a file's resolve URL for its commit, etag and size, {@code GET} (with {@code Range} to
 * resume) for its bytes. Redirects are followed by hand: a {@code HEAD} follows only a relative one (a renamed
 * repository) and stops at an absolute one (the CDN redirect of an LFS file, which carries the file's metadata where
 * the CDN's answer would not), as huggingface_hub does; a {@code GET} follows all. The token goes to the endpoint's
 * host only, never to a CDN.
 */
final class HubHttp {
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    /** Until the response headers arrive; a download's body then takes as long as it takes. */
    private static final Duration RESPONSE_TIMEOUT = Duration.ofSeconds(30);
    private static final int MAX_REDIRECTS = 10;
    private static final String USER_AGENT = "spiel4j (java/" + Runtime.version().feature() + ")";
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");

    /** A revision's commit and every file of the repository at that commit. */
    record RepoInfo(String commit, List<String> files) {
    }

    /**
     * What a {@code HEAD} on a file says.
     *
     * @param etag the git blob sha1 of a small file, or the sha256 of an LFS file's content
     * @param size bytes, or -1 when the Hub does not say
     */
    record FileMetadata(String commit, String etag, long size) {
        /** An LFS file's etag is the sha256 of its bytes, so the download can be checked against it. */
        boolean hasSha256() {
            return SHA256.matcher(etag).matches();
        }
    }

    /** No answer at all (connection refused, no route, timeout), as opposed to a refusal: the cache may serve. */
    static final class Unreachable extends HubException {
        private final String reason;

        Unreachable(HubLocation what, String reason, Throwable cause) {
            super(what + ": " + reason, cause);
            this.reason = reason;
        }

        /** Why, without the location. */
        String reason() {
            return reason;
        }
    }

    private final HubSettings settings;
    private final HttpClient client;

    HubHttp(HubSettings settings) {
        this.settings = settings;
        // HTTP/1.1 as huggingface_hub's requests speaks it; redirects by hand (see the class comment).
        this.client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(CONNECT_TIMEOUT)
                .followRedirects(HttpClient.Redirect.NEVER).build();
    }

    RepoInfo repoInfo(HubLocation repo) {
        URI url = repo.infoUrl(settings.endpoint());
        HttpResponse<byte[]> r = send("GET", url, 0, BodyHandlers.ofByteArray(), true, repo);
        if (r.statusCode() != 200) {
            throw refusal(r, url, repo);
        }
        JsonNode info;
        try {
            info = JsonFiles.MAPPER.readTree(r.body());
        } catch (IOException e) {
            throw new HubException(repo + ": " + url + " did not answer JSON: " + e.getMessage(), e);
        }
        String commit = info.path("sha").asText("");
        if (!HubLocation.isCommit(commit) || !info.path("siblings").isArray()) {
            throw new HubException(repo + ": " + url + " gave no commit ('sha') and file list ('siblings'); is "
                    + settings.endpoint() + " a Hugging Face Hub?");
        }
        List<String> files = new ArrayList<>();
        info.get("siblings").forEach(s -> files.add(s.path("rfilename").asText()));
        return new RepoInfo(commit, List.copyOf(files));
    }

    /** @param file a location with a file; {@code revision} replaces its own (a commit, to pin a snapshot) */
    FileMetadata head(HubLocation file, String revision) {
        URI url = file.fileUrl(settings.endpoint(), revision, file.file().orElseThrow());
        HttpResponse<Void> r = send("HEAD", url, 0, BodyHandlers.discarding(), false, file);
        if (r.statusCode() != 200 && !isRedirect(r.statusCode())) {
            throw refusal(r, url, file);
        }
        Optional<String> commit = r.headers().firstValue("X-Repo-Commit");
        Optional<String> etag = r.headers().firstValue("X-Linked-Etag").or(() -> r.headers().firstValue("ETag"))
                .map(e -> e.replaceFirst("^W/", "").replace("\"", ""));
        if (commit.isEmpty() || etag.isEmpty()) {
            throw new HubException(file + ": HEAD " + url + " gave no X-Repo-Commit or ETag; is "
                    + settings.endpoint() + " a Hugging Face Hub?");
        }
        long size = r.headers().firstValue("X-Linked-Size").or(() -> r.headers().firstValue("Content-Length"))
                .map(Long::parseLong).orElse(-1L);
        return new FileMetadata(commit.get(), etag.get(), size);
    }

    /**
     * The file's bytes from {@code offset} on: status 206 when the server honoured the range, 200 when it sends the
     * whole file. The caller closes the body.
     */
    HttpResponse<InputStream> get(HubLocation file, String commit, long offset) {
        URI url = file.fileUrl(settings.endpoint(), commit, file.file().orElseThrow());
        // Only a success is streamed; a redirect's or an error's body is dropped.
        BodyHandler<InputStream> body = info -> info.statusCode() / 100 == 2 ? BodySubscribers.ofInputStream()
                : BodySubscribers.replacing(InputStream.nullInputStream());
        HttpResponse<InputStream> r = send("GET", url, offset, body, true, file);
        if (r.statusCode() != 200 && r.statusCode() != 206) {
            throw refusal(r, url, file);
        }
        return r;
    }

    private <T> HttpResponse<T> send(String method, URI url, long rangeFrom, BodyHandler<T> handler,
                                     boolean followAbsolute, HubLocation what) {
        URI current = url;
        for (int redirects = 0; ; redirects++) {
            HttpRequest.Builder request = HttpRequest.newBuilder(current).timeout(RESPONSE_TIMEOUT)
                    .method(method, HttpRequest.BodyPublishers.noBody()).header("User-Agent", USER_AGENT);
            if (rangeFrom > 0) {
                request.header("Range", "bytes=" + rangeFrom + "-");
            }
            if (sameOrigin(current, settings.endpoint())) {
                settings.token().ifPresent(t -> request.header("Authorization", "Bearer " + t));
            }
            HttpResponse<T> r;
            try {
                r = client.send(request.build(), handler);
            } catch (ConnectException | HttpTimeoutException e) {
                throw new Unreachable(what, "cannot reach " + origin(current) + " (" + e + ")", e);
            } catch (IOException e) {
                throw new HubException(what + ": " + method + " " + current + " failed: " + e, e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new HubException(what + ": interrupted during " + method + " " + current, e);
            }
            Optional<String> location = r.headers().firstValue("Location");
            if (!isRedirect(r.statusCode()) || location.isEmpty()) {
                return r;
            }
            URI target = URI.create(location.get());
            if (!followAbsolute && target.getHost() != null) {
                return r;
            }
            if (redirects == MAX_REDIRECTS) {
                throw new HubException(what + ": more than " + MAX_REDIRECTS + " redirects from " + url);
            }
            current = current.resolve(target);
        }
    }

    private static boolean isRedirect(int status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    }

    private static boolean sameOrigin(URI a, URI b) {
        return a.getScheme().equalsIgnoreCase(b.getScheme()) && a.getHost().equalsIgnoreCase(b.getHost())
                && port(a) == port(b);
    }

    private static int port(URI u) {
        return u.getPort() >= 0 ? u.getPort() : u.getScheme().equalsIgnoreCase("https") ? 443 : 80;
    }

    private static String origin(URI u) {
        return u.getScheme() + "://" + u.getAuthority();
    }

    /** The Hub's "no", in words: its X-Error-Code when it sends one, else the status. */
    private HubException refusal(HttpResponse<?> r, URI url, HubLocation what) {
        String tokenHint = settings.token().isPresent()
                ? "the token given (HF_TOKEN or the stored login) may not read it"
                : "set HF_TOKEN to a token that can read it";
        String problem = switch (r.headers().firstValue("X-Error-Code").orElse("")) {
            case "RepoNotFound" -> "no such repository " + what.repo() + ", or it is private or gated: " + tokenHint;
            case "RevisionNotFound" -> "no such revision '" + what.revision() + "' in " + what.repo();
            case "EntryNotFound" -> "no such file '" + what.file().orElse("") + "' in " + what.repo() + " at "
                    + what.revision();
            case "GatedRepo" -> what.repo() + " is gated: accept its conditions on the Hub, and " + tokenHint;
            default -> switch (r.statusCode()) {
                case 401, 403 -> "access refused: " + tokenHint;
                case 404 -> "no such repository, revision or file";
                case 429 -> "too many requests; wait and try again";
                default -> r.statusCode() >= 500 ? "the Hub failed to answer; try again later" : "unexpected answer";
            };
        };
        return new HubException(String.format(Locale.ROOT, "%s: %s (HTTP %d from %s)", what, problem, r.statusCode(),
                url));
    }
}
