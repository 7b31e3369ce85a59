package dev.spiel4j.cli;

/** A runtime failure whose message already says everything a user needs (exit code 1, no stack trace). */
final class CliFailure extends RuntimeException {
    CliFailure(String message, Throwable cause) {
        super(message, cause);
    }
}
