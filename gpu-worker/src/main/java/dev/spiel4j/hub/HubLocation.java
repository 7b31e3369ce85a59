package dev.spiel4j.hub;

import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Something on the Hugging Face Hub that stands for a local path:
 * <ul>
 *   <li>{@code hf://ORG/REPO[@REV]}: a model checkpoint repository (the files a checkpoint needs);</li>
 *   <li>{@code hf://ORG/REPO[@REV]/PATH}: one file of a model repository (e.g. a GGUF file);</li>
 *   <li>{@code hf://datasets/ORG/REPO[@REV]/PATH}: one file of a dataset repository.</li>
 * </ul>
 * {@code REV} is a branch, tag or commit hash (default {@code main}); a revision with a slash is written with
 * {@code %2F} (e.g. {@code refs%2Fpr%2F1}), since the first slash after the repository starts the path.
 *
 * @param file the file in the repository; empty for a checkpoint repository
 */
public record HubLocation(Type type, String repo, String revision, Optional<String> file) {
    public static final String SCHEME = "hf://";
    public static final String DEFAULT_REVISION = "main";

    /** The Hub's kinds of repository, with the names its URLs and its cache folders use for them. */
    public enum Type {
        MODEL("models", ""), DATASET("datasets", "datasets/");

        private final String plural;
        private final String urlPrefix;

        Type(String plural, String urlPrefix) {
            this.plural = plural;
            this.urlPrefix = urlPrefix;
        }
    }

    /** The Hub's rule for user, organisation and repository names; they also become cache folder names. */
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,95}");
    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    public HubLocation {
        String[] names = repo.split("/", -1);
        for (String n : names) {
            if (names.length != 2 || !NAME.matcher(n).matches() || n.contains("--") || n.contains("..")) {
                throw new IllegalArgumentException("'" + repo + "' is not ORG/REPO with valid Hub names (letters,"
                        + " digits, '-', '_', '.'; no '--' or '..'; at most 96 characters each)");
            }
        }
        if (!isRevision(revision)) {
            throw new IllegalArgumentException("'" + revision + "' is not a revision (a branch, tag or commit hash)");
        }
        file.ifPresent(HubLocation::checkRelativePath);
        if (type == Type.DATASET && file.isEmpty()) {
            throw new IllegalArgumentException("name a file of the dataset repository: " + SCHEME
                    + "datasets/ORG/REPO[@REV]/PATH");
        }
    }

    /** Whether a value of a path option or setting names the Hub rather than a local path. */
    public static boolean isHub(String value) {
        return value.startsWith(SCHEME);
    }

    /** @throws IllegalArgumentException naming the value and what is wrong with it */
    public static HubLocation parse(String uri) {
        if (!isHub(uri)) {
            throw new IllegalArgumentException("'" + uri + "' is not an " + SCHEME + " location");
        }
        String rest = uri.substring(SCHEME.length());
        if (rest.startsWith("spaces/")) {
            throw new IllegalArgumentException(uri + ": Spaces are not supported; name a model or dataset repository");
        }
        Type type = rest.startsWith(Type.DATASET.urlPrefix) ? Type.DATASET : Type.MODEL;
        String[] parts = rest.substring(type.urlPrefix.length()).split("/", 3);
        if (parts.length < 2 || parts[1].isEmpty()) {
            throw new IllegalArgumentException(uri + ": expected " + SCHEME + type.urlPrefix
                    + "ORG/REPO[@REV][/PATH] (repositories without an organisation, such as gpt2, live under one"
                    + " now, e.g. openai-community/gpt2)");
        }
        String name = parts[1];
        String revision = DEFAULT_REVISION;
        int at = name.indexOf('@');
        if (at >= 0) {
            revision = name.substring(at + 1).replace("%2F", "/").replace("%2f", "/");
            name = name.substring(0, at);
        }
        Optional<String> file = parts.length == 3 && !parts[2].isEmpty() ? Optional.of(parts[2]) : Optional.empty();
        try {
            return new HubLocation(type, parts[0] + "/" + name, revision, file);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(uri + ": " + e.getMessage(), e);
        }
    }

    /** A repository path must stay inside the repository (and so inside its cache snapshot). */
    static void checkRelativePath(String path) {
        for (String segment : path.split("/", -1)) {
            if (segment.isEmpty() || segment.equals(".") || segment.equals("..") || segment.contains("\\")) {
                throw new IllegalArgumentException("'" + path + "' is not a relative path inside a repository");
            }
        }
    }

    /**
     * Printable ASCII without {@code ..} (git's rule for ref names), usable as a path under the cache's
     * {@code refs/} (huggingface_hub stores it so).
     */
    private static boolean isRevision(String revision) {
        if (!revision.chars().allMatch(c -> c > ' ' && c < 127) || revision.contains("..")) {
            return false;
        }
        try {
            checkRelativePath(revision);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** Whether {@code revision} is a full commit hash, which never moves. */
    static boolean isCommit(String revision) {
        return COMMIT.matcher(revision).matches();
    }

    /** The same repository and revision, one file of it. */
    HubLocation withFile(String path) {
        return new HubLocation(type, repo, revision, Optional.of(path));
    }

    /** The cache folder of the repository, as huggingface_hub names it ({@code models--ORG--REPO}). */
    String cacheFolder() {
        return type.plural + "--" + repo.replace("/", "--");
    }

    /** {@code GET} gives the revision's commit and the repository's file list. */
    URI infoUrl(URI endpoint) {
        return URI.create(endpoint + "/api/" + type.plural + "/" + repo + "/revision/" + encode(revision));
    }

    /** {@code HEAD} gives a file's commit, etag and size; {@code GET} its bytes (through redirects). */
    URI fileUrl(URI endpoint, String revision, String path) {
        StringBuilder url = new StringBuilder(endpoint + "/" + type.urlPrefix + repo + "/resolve/" + encode(revision));
        for (String segment : path.split("/")) {
            url.append('/').append(encode(segment));
        }
        return URI.create(url.toString());
    }

    private static String encode(String segment) {
        return URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** The canonical {@code hf://} form (the revision shown unless it is {@code main}). */
    @Override
    public String toString() {
        return SCHEME + type.urlPrefix + repo
                + (revision.equals(DEFAULT_REVISION) ? "" : "@" + revision.replace("/", "%2F"))
                + file.map(f -> "/" + f).orElse("");
    }
}
