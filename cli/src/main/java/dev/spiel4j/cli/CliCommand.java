package dev.spiel4j.cli;

import java.nio.charset.StandardCharsets;
import java.io.PrintStream;
import java.io.OutputStream;
import java.io.ByteArrayOutputStream;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * A subcommand: computes a {@link Result} and prints it, as text or, with {@code --json}, as one JSON line (see
 * {@link Main} for the output and exit-code contract). Subclasses validate their arguments with
 * {@link #usage(String)} and {@link #requireExisting} and report progress with {@link #progress(String)}.
 */
abstract class CliCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Spec
    CommandSpec spec;

    // order: listed after each command's own options in --help
    @Option(names = "--json", order = 100,
            description = "Print the result as one JSON object (the last line on stdout).")
    boolean json;

    @Option(names = {"-v", "--verbose"}, order = 101, description = "Show stack traces of errors.")
    boolean verbose;

    /**
     * What a subcommand produced: the text for a person and the JSON object for a program.
     *
     * @param failure null on success; else the work ran but failed (a training run that ended FAILED): the result is
     *                still printed, then this message as an error on stderr, and the exit code is 1
     */
    record Result(String text, Map<String, Object> json, String failure) {
        Result(String text, Map<String, Object> json) {
            this(text, json, null);
        }
    }

    /** Does the work; exceptions become exit code 1 with their message. */
    abstract Result run() throws Exception;

    @Override
    public final Integer call() throws Exception {
        Result result = run();
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(toJson(result.json()));
        } else if (!result.text().isEmpty()) {
            out.print(result.text().endsWith("\n") ? result.text() : result.text() + "\n");
        }
        out.flush();
        if (result.failure() != null) {
            PrintWriter err = spec.commandLine().getErr();
            err.println(spec.qualifiedName() + ": error: " + result.failure());
            err.flush();
            return CommandLine.ExitCode.SOFTWARE;
        }
        return CommandLine.ExitCode.OK;
    }

    boolean verbose() {
        return verbose;
    }

    /** A usage error (exit 2) of this subcommand. */
    ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }

    /** Fails with a usage error naming the flag unless {@code path} exists (a file, or a directory if allowed). */
    Path requireExisting(Path path, String flag, boolean directoryAllowed) {
        if (Files.isRegularFile(path) || (directoryAllowed && Files.isDirectory(path))) {
            return path;
        }
        throw usage(flag + ": " + (Files.exists(path) ? "not a regular file: " : "no such file: ") + path);
    }

    /**
     * The fine-tuning file that an {@code --sft} value names ({@link SftFiles#resolve}: the file itself or a
     * checkpoint directory's); a usage error naming the value when it does not exist or is another directory.
     */
    Path requireSft(Path path) {
        requireExisting(path, "--sft", true);
        try {
            return SftFiles.resolve(path, line -> progress(spec.name() + ": --sft " + line));
        } catch (IllegalArgumentException e) {
            throw usage("--sft: " + e.getMessage());
        }
    }

    /** A progress line on stderr, so that stdout keeps only the result. */
    void progress(String line) {
        PrintWriter err = spec.commandLine().getErr();
        err.println(line);
        err.flush();
    }

    /** Standard error as a {@link PrintStream}, for code that writes lines to one (progress feeds). */
    PrintStream stderr() {
        PrintWriter err = spec.commandLine().getErr();
        return new PrintStream(new OutputStream() {
            private final ByteArrayOutputStream line = new ByteArrayOutputStream();

            @Override
            public void write(int b) {
                if (b == '\n') {
                    err.println(line.toString(StandardCharsets.UTF_8));
                    err.flush();
                    line.reset();
                } else {
                    line.write(b);
                }
            }
        }, true, StandardCharsets.UTF_8);
    }

    static String toJson(Object value) {
        try {
            return JSON.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write the result as JSON", e);
        }
    }
}
