package dev.spiel4j.hub;

/**
 * A Hub location could not be resolved: the message names the {@code hf://} location and the problem (no such
 * repository, revision or file; access refused; not in the cache while offline; a download that failed or did not
 * match its checksum), complete enough to show a user as is.
 */
public class HubException extends RuntimeException {
    public HubException(String message) {
        super(message);
    }

    public HubException(String message, Throwable cause) {
        super(message, cause);
    }
}
