package dev.spiel4j.hub;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.http.HttpResponse;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * Brings one file's bytes into its blob: appends to {@code blobs/<etag>.incomplete} (so an interrupted download
 * resumes where it stopped, with a {@code Range} request), checks the size and, for an LFS file, the sha256 its etag
 * names, and only then renames it to {@code blobs/<etag>}. A file that fails the check is deleted, never used.
 */
final class BlobDownload {
    /** Progress lines at most this often, so a terminal is not flooded. */
    private static final long PROGRESS_INTERVAL_NANOS = 500_000_000L;
    private static final int BUFFER = 1 << 20;

    private final HubHttp http;
    private final RepoCache cache;
    private final Consumer<String> progress;

    BlobDownload(HubHttp http, RepoCache cache, Consumer<String> progress) {
        this.http = http;
        this.cache = cache;
        this.progress = progress;
    }

    /** The blob of {@code file} at {@code meta.commit()}, downloaded unless the cache has it. */
    Path fetch(HubLocation file, HubHttp.FileMetadata meta) {
        Path blob = cache.blob(meta.etag());
        if (Files.exists(blob)) {
            return blob; // the same bytes under another name or revision
        }
        try (FileChannel held = cache.lock(meta.etag())) {
            if (!Files.exists(blob)) { // another process may have finished it while we waited
                download(file, meta, blob);
            }
            return blob;
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write " + blob + " in the Hub cache: " + e, e);
        }
    }

    private void download(HubLocation file, HubHttp.FileMetadata meta, Path blob) throws IOException {
        Path partial = blob.resolveSibling(blob.getFileName() + ".incomplete");
        Files.createDirectories(blob.getParent());
        long have = Files.exists(partial) ? Files.size(partial) : 0;
        if (meta.size() >= 0 && have > meta.size()) {
            have = 0; // not a prefix of this file
        }
        MessageDigest sha256 = meta.hasSha256() ? sha256() : null;
        if (have > 0 && sha256 != null) {
            digest(partial, have, sha256);
        }
        if (meta.size() < 0 || have < meta.size()) {
            have = transfer(file, meta, partial, have, sha256);
        }
        if (meta.size() >= 0 && have < meta.size()) {
            throw stopped(file, meta, partial, have, "the server ended the response early");
        }
        if (meta.size() >= 0 && have > meta.size()) {
            Files.deleteIfExists(partial);
            throw new HubException(file + ": received " + have + " bytes but the Hub announced " + meta.size()
                    + "; the download was deleted, run again to fetch it anew");
        }
        if (sha256 != null) {
            String actual = HexFormat.of().formatHex(sha256.digest());
            if (!actual.equals(meta.etag())) {
                Files.deleteIfExists(partial);
                throw new HubException(file + ": the downloaded bytes have sha256 " + actual + " but the Hub says "
                        + meta.etag() + "; the download was deleted, nothing of it is used");
            }
        }
        Files.move(partial, blob, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Appends the rest of the file to {@code partial}; returns its length. */
    private long transfer(HubLocation file, HubHttp.FileMetadata meta, Path partial, long have,
                          MessageDigest sha256) throws IOException {
        HttpResponse<InputStream> r = http.get(file, meta.commit(), have);
        if (have > 0 && r.statusCode() == 200) {
            have = 0; // the server ignored the range and sends everything: start over
            if (sha256 != null) {
                sha256.reset();
            }
        }
        String range = r.headers().firstValue("Content-Range").orElse("");
        if (r.statusCode() == 206 && !range.startsWith("bytes " + have + "-")) {
            r.body().close();
            throw new HubException(file + ": asked for the bytes from " + have + " on, the server sent '" + range + "'");
        }
        Progress report = new Progress(file, have, meta.size());
        StandardOpenOption mode = have > 0 ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING;
        try (InputStream in = r.body();
             OutputStream out = Files.newOutputStream(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                     mode)) {
            byte[] buffer = new byte[BUFFER];
            for (int n; (n = in.read(buffer)) > 0; ) {
                out.write(buffer, 0, n);
                if (sha256 != null) {
                    sha256.update(buffer, 0, n);
                }
                have += n;
                report.update(have);
            }
        } catch (IOException e) {
            HubException stopped = stopped(file, meta, partial, have, e.toString());
            stopped.initCause(e);
            throw stopped;
        }
        report.done(have);
        return have;
    }

    private static HubException stopped(HubLocation file, HubHttp.FileMetadata meta, Path partial, long have,
                                        String why) {
        return new HubException(file + ": the download stopped after " + size(have) + " of " + size(meta.size())
                + " (" + why + "); " + partial + " is kept and the next attempt resumes it");
    }

    private static void digest(Path file, long length, MessageDigest into) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buffer = new byte[BUFFER];
            long left = length;
            for (int n; left > 0 && (n = in.read(buffer, 0, (int) Math.min(buffer.length, left))) > 0; left -= n) {
                into.update(buffer, 0, n);
            }
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    static String size(long bytes) {
        return bytes < 0 ? "? bytes" : bytes < 1_000_000 ? bytes + " bytes"
                : String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }

    /** Lines such as {@code hf://ORG/REPO/model.safetensors: 12.0 MB of 40.0 MB (30%)}, throttled. */
    private final class Progress {
        private final HubLocation file;
        private final long total;
        private long lastReport;

        Progress(HubLocation file, long resumedAt, long total) {
            this.file = file;
            this.total = total;
            this.lastReport = System.nanoTime();
            if (resumedAt > 0) {
                progress.accept(file + ": resuming after " + size(resumedAt) + " of " + size(total));
            }
        }

        void update(long have) {
            long now = System.nanoTime();
            if (now - lastReport >= PROGRESS_INTERVAL_NANOS) {
                lastReport = now;
                progress.accept(file + ": " + size(have) + " of " + size(total)
                        + (total > 0 ? String.format(Locale.ROOT, " (%d%%)", have * 100 / total) : ""));
            }
        }

        void done(long have) {
            progress.accept(file + ": " + size(have) + " downloaded");
        }
    }
}
