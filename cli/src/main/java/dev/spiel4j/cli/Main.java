package dev.spiel4j.cli;

import dev.spiel4j.hub.HubException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParameterException;

import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;

/**
 * The {@code spiel4j} command line. Every subcommand is one class extending {@link CliCommand} and is listed in
 * {@code subcommands} below; {@code train} joins the list the same way.
 *
 * <p>Output contract: a subcommand's result goes to stdout, human-readable by default, or with {@code --json}
 * as exactly one JSON object on one line, the last (and only) line on stdout. Progress, warnings and errors go to
 * stderr. Exit codes: 0 success, 2 usage errors (unknown flag, bad or missing value, an input path that does not
 * exist or is a directory of the wrong kind), 1 runtime failures (a malformed file, a fine-tuning made for another
 * base model, a training run that ended FAILED: its summary is still printed). Errors print one message naming the
 * flag or file and what is wrong; {@code --verbose} adds the stack trace.
 */
@Command(name = "spiel4j", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Sparse fine-tuning (SpIEL) of LLaMA models on the JVM.",
        subcommands = {GenerateCommand.class, ScoreCommand.class, MergeCommand.class, ComposeCommand.class,
                ExportCommand.class, InspectCommand.class, TrainCommand.class, WatchCommand.class, PullCommand.class,
                ReportCommand.class, DeadLettersCommand.class, BenchCommand.class, WorkerCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(execute(System.out, System.err, args));
    }

    /** Runs one command line with the given streams and returns its exit code (what tests call). */
    public static int execute(PrintStream out, PrintStream err, String... args) {
        PrintWriter o = new PrintWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8), true);
        PrintWriter e = new PrintWriter(new OutputStreamWriter(err, StandardCharsets.UTF_8), true);
        CommandLine cli = new CommandLine(new Main())
                .setOut(o)
                .setErr(e)
                .setParameterExceptionHandler(Main::usageError)
                .setExecutionExceptionHandler(Main::runtimeError);
        try {
            return cli.execute(args);
        } finally {
            o.flush();
            e.flush();
        }
    }

    /** Without a subcommand: a usage error that points to --help. */
    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing subcommand");
    }

    /** Exit 2: the message and a pointer to --help, not the whole usage text. */
    private static int usageError(ParameterException ex, String[] args) {
        CommandLine cmd = ex.getCommandLine();
        PrintWriter err = cmd.getErr();
        err.println(cmd.getCommandSpec().qualifiedName() + ": " + ex.getMessage());
        err.println("Try '" + cmd.getCommandSpec().qualifiedName() + " --help' for more information.");
        if (isVerbose(cmd)) {
            ex.printStackTrace(err);
        }
        err.flush();
        return CommandLine.ExitCode.USAGE;
    }

    /** Exit 1: one line naming what failed; the stack trace only with --verbose. */
    private static int runtimeError(Exception ex, CommandLine cmd, CommandLine.ParseResult parsed) {
        PrintWriter err = cmd.getErr();
        err.println(cmd.getCommandSpec().qualifiedName() + ": error: " + describe(ex));
        if (isVerbose(cmd)) {
            ex.printStackTrace(err);
        }
        err.flush();
        return CommandLine.ExitCode.SOFTWARE;
    }

    /**
     * The engine's argument and state exceptions carry complete messages (file, tensor, field, problem); anything
     * else also names its type, since e.g. an IOException's message is often just a path.
     */
    private static String describe(Exception ex) {
        boolean complete = ex instanceof CliFailure || ex instanceof IllegalArgumentException
                || ex instanceof IllegalStateException || ex instanceof HubException;
        return complete && ex.getMessage() != null ? ex.getMessage()
                : ex.getClass().getSimpleName() + ": " + ex.getMessage();
    }

    private static boolean isVerbose(CommandLine cmd) {
        return cmd.getCommand() instanceof CliCommand c && c.verbose();
    }

    /** The version from the jar manifest, or "dev" when run from classes. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[]{"spiel4j " + (v == null ? "dev" : v)};
        }
    }
}
