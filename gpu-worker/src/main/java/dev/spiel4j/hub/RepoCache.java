package dev.spiel4j.hub;

import dev.spiel4j.io.AtomicFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Optional;

/**
 * One repository's folder in the Hub cache, in huggingface_hub's layout so that both share it:
 * <pre>
 * {cache}/models--ORG--REPO/blobs/{etag}                 the bytes of a file (etag: the git blob sha1, or the
 *                                                         sha256 of an LFS file); {etag}.incomplete while downloading
 *                          /snapshots/{commit}/{path}    a relative symbolic link to the blob (a copy where links fail)
 *                          /refs/{revision}              the commit the revision pointed at when last asked
 * {cache}/.locks/models--ORG--REPO/{etag}.lock            held while a blob is downloaded
 * </pre>
 */
final class RepoCache {
    private final Path root;
    private final Path locks;

    RepoCache(Path cache, HubLocation location) {
        this.root = cache.resolve(location.cacheFolder());
        this.locks = cache.resolve(".locks").resolve(location.cacheFolder());
    }

    Path root() {
        return root;
    }

    Path snapshot(String commit) {
        return root.resolve("snapshots").resolve(commit);
    }

    Path blob(String etag) {
        return root.resolve("blobs").resolve(etag);
    }

    /** The commit {@code revision} last resolved to; a commit hash is its own. */
    Optional<String> commitOf(String revision) {
        if (HubLocation.isCommit(revision)) {
            return Optional.of(revision);
        }
        Path ref = root.resolve("refs").resolve(revision);
        try {
            return Files.isRegularFile(ref) ? Optional.of(Files.readString(ref).strip()) : Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + ref + ": " + e.getMessage(), e);
        }
    }

    /** Records where {@code revision} points now (a commit hash needs no ref). */
    void writeRef(String revision, String commit) {
        if (revision.equals(commit) || commitOf(revision).filter(commit::equals).isPresent()) {
            return;
        }
        Path ref = root.resolve("refs").resolve(revision);
        try {
            Files.createDirectories(ref.getParent());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + ref.getParent() + ": " + e.getMessage(), e);
        }
        AtomicFiles.writeString(ref, commit);
    }

    /**
     * Makes {@code pointer} (a file of a snapshot) show {@code blob}: a relative link, so the cache can move, or a
     * copy where the file system has no links (huggingface_hub falls back the same way).
     */
    void link(Path pointer, Path blob) {
        try {
            Files.createDirectories(pointer.getParent());
            Files.deleteIfExists(pointer); // a link left dangling by a deleted blob
            try {
                Files.createSymbolicLink(pointer, pointer.getParent().relativize(blob));
            } catch (UnsupportedOperationException | IOException e) {
                Path tmp = Files.createTempFile(pointer.getParent(), "." + pointer.getFileName(), ".tmp");
                Files.copy(blob, tmp, StandardCopyOption.REPLACE_EXISTING);
                Files.move(tmp, pointer, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot place " + pointer + " in the Hub cache: " + e.getMessage(), e);
        }
    }

    /**
     * A channel holding the blob's lock until it is closed, so that two processes never append to one
     * {@code .incomplete} file. (A POSIX lock: it excludes other spiel4j processes; Python's filelock uses flock,
     * which Linux keeps apart from it.)
     */
    FileChannel lock(String etag) {
        Path file = locks.resolve(etag + ".lock");
        try {
            Files.createDirectories(locks);
            FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            try {
                channel.lock();
                return channel;
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot lock " + file + ": " + e.getMessage(), e);
        }
    }
}
