package dev.spiel4j.cli;

import dev.spiel4j.hub.HubClient;
import dev.spiel4j.hub.HubLocation;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;

import java.io.PrintWriter;
import java.nio.file.Path;

/**
 * Input options that also take an {@code hf://} location ({@link HubLocation}): a malformed one is a usage error
 * naming the option; a well-formed one is resolved into the Hub cache with progress on stderr (a download that fails
 * is a runtime failure naming the location).
 */
final class HubInputs {
    static final String HELP = "Or on the Hugging Face Hub: hf://ORG/REPO[@REV] (a checkpoint), hf://ORG/REPO[@REV]/FILE"
            + " or hf://datasets/ORG/REPO[@REV]/FILE, fetched into the Hub cache (HF_HOME, HF_TOKEN, HF_HUB_OFFLINE).";

    private HubInputs() {
    }

    static boolean isHub(String value) {
        return HubLocation.isHub(value);
    }

    /** A usage error naming {@code option} unless the location is well formed. */
    static HubLocation check(String value, String option, CommandLine cli) {
        try {
            return HubLocation.parse(value);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(cli, option + ": " + e.getMessage());
        }
    }

    /** The local path of {@code value}: itself, or the local copy of an {@code hf://} location. */
    static Path resolve(String value, String option, CommandLine cli) {
        if (!isHub(value)) {
            return Path.of(value);
        }
        HubLocation location = check(value, option, cli);
        PrintWriter err = cli.getErr();
        return HubClient.fromEnvironment(line -> {
            err.println(line);
            err.flush();
        }).resolve(location);
    }
}
