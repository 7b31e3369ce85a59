package dev.spiel4j.hub;

import dev.spiel4j.loader.HfCheckpoint;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Turns a model or data location into a local path: a local path stays as it is; an {@code hf://} location
 * ({@link HubLocation}) becomes its copy in the Hub cache ({@link HubSettings}), downloaded as needed, in the layout
 * huggingface_hub uses, so Python tools and spiel4j share one cache.
 *
 * <p>What a resolve asks the Hub:
 * <ul>
 *   <li>Online, once per resolve, where the revision points now: a checkpoint repository's revision endpoint (its
 *       commit and file list), or a {@code HEAD} on the one file (as huggingface_hub does, so a moved branch is
 *       noticed). Files already in that commit's snapshot are not requested again; a file missing from the
 *       snapshot whose bytes are already a blob (same etag) is linked without a download.</li>
 *   <li>A full commit hash as the revision never moves: a complete cached snapshot is used with no request.</li>
 *   <li>Offline ({@code HF_HUB_OFFLINE=1}): no request; the cached {@code refs/REV} and snapshot, or a failure
 *       naming what is missing. The same fallback serves when the endpoint cannot be reached at all (as in
 *       huggingface_hub), with a line saying so.</li>
 * </ul>
 */
public final class HubClient {
    private final HubSettings settings;
    private final Consumer<String> progress;
    private final HubHttp http;

    /** @param progress told each download's progress, a few lines a second at most, and cache fallbacks */
    public HubClient(HubSettings settings, Consumer<String> progress) {
        this.settings = settings;
        this.progress = progress;
        this.http = new HubHttp(settings);
    }

    /** With this process's {@link HubSettings#fromEnvironment() settings}. */
    public static HubClient fromEnvironment(Consumer<String> progress) {
        return new HubClient(HubSettings.fromEnvironment(), progress);
    }

    /**
     * {@code uriOrPath} as a local path: the path itself, or for an {@code hf://} location the local snapshot
     * directory of a checkpoint repository or the local copy of a file.
     *
     * @throws IllegalArgumentException when an {@code hf://} value is malformed
     * @throws HubException             when it cannot be resolved (the message names it and why)
     */
    public Path resolve(String uriOrPath) {
        return HubLocation.isHub(uriOrPath) ? resolve(HubLocation.parse(uriOrPath)) : Path.of(uriOrPath);
    }

    /** As {@link #resolve(String)}. */
    public Path resolve(HubLocation location) {
        RepoCache cache = new RepoCache(settings.cache(), location);
        if (settings.offline()) {
            return cached(location, cache, "HF_HUB_OFFLINE is set");
        }
        if (HubLocation.isCommit(location.revision())) {
            Optional<Path> complete = lookUp(location, cache, location.revision()).path();
            if (complete.isPresent()) {
                return complete.get();
            }
        }
        try {
            return location.file().isPresent() ? fetchFile(location, cache) : fetchCheckpoint(location, cache);
        } catch (HubHttp.Unreachable e) {
            Path path = cached(location, cache, e.reason());
            progress.accept(location + ": using the cached copy, since the Hub did not answer: " + e.reason());
            return path;
        }
    }

    private Path fetchFile(HubLocation file, RepoCache cache) {
        HubHttp.FileMetadata meta = http.head(file, file.revision());
        cache.writeRef(file.revision(), meta.commit());
        return place(file, cache, meta);
    }

    private Path fetchCheckpoint(HubLocation repo, RepoCache cache) {
        HubHttp.RepoInfo info = http.repoInfo(repo);
        cache.writeRef(repo.revision(), info.commit());
        Path snapshot = cache.snapshot(info.commit());
        for (String file : CheckpointFiles.select(repo, info.files())) {
            fetchPinned(repo.withFile(file), cache, info.commit());
        }
        Path index = snapshot.resolve(HfCheckpoint.INDEX);
        if (Files.exists(index)) {
            for (String shard : CheckpointFiles.shards(repo, index, info.files())) {
                fetchPinned(repo.withFile(shard), cache, info.commit());
            }
        }
        return snapshot;
    }

    /** A file of a known commit: nothing to ask when the snapshot already has it. */
    private void fetchPinned(HubLocation file, RepoCache cache, String commit) {
        if (!Files.exists(cache.snapshot(commit).resolve(file.file().orElseThrow()))) {
            place(file, cache, http.head(file, commit));
        }
    }

    /** The file in its commit's snapshot, linked to its blob (downloaded unless the cache has it). */
    private Path place(HubLocation file, RepoCache cache, HubHttp.FileMetadata meta) {
        Path pointer = cache.snapshot(meta.commit()).resolve(file.file().orElseThrow());
        if (!Files.exists(pointer)) {
            cache.link(pointer, new BlobDownload(http, cache, progress).fetch(file, meta));
        }
        return pointer;
    }

    /** The cached copy, or a failure saying why the Hub was not asked ({@code reason}) and what the cache lacks. */
    private Path cached(HubLocation location, RepoCache cache, String reason) {
        Optional<String> commit = cache.commitOf(location.revision());
        if (commit.isEmpty()) {
            throw new HubException(location + ": not in the Hub cache (" + reason + "; " + cache.root()
                    + " has no refs/" + location.revision() + ", so nothing of this revision was downloaded)");
        }
        Lookup found = lookUp(location, cache, commit.get());
        return found.path().orElseThrow(() -> new HubException(location + ": not complete in the Hub cache ("
                + reason + "; snapshot " + commit.get() + " lacks " + String.join(", ", found.missing()) + ")"));
    }

    /** The copy in a commit's snapshot if it is complete, else what it lacks. */
    private static Lookup lookUp(HubLocation location, RepoCache cache, String commit) {
        Path snapshot = cache.snapshot(commit);
        if (location.file().isPresent()) {
            Path file = snapshot.resolve(location.file().get());
            return Files.exists(file) ? new Lookup(Optional.of(file), List.of())
                    : new Lookup(Optional.empty(), List.of(location.file().get()));
        }
        List<String> missing = CheckpointFiles.missing(snapshot);
        return new Lookup(missing.isEmpty() ? Optional.of(snapshot) : Optional.empty(), missing);
    }

    private record Lookup(Optional<Path> path, List<String> missing) {
    }
}
