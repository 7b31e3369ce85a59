/**
 * The {@code spiel4j} command line ({@link dev.spiel4j.cli.Main}): one picocli subcommand class per verb, all
 * extending {@code CliCommand} (the {@code --json}/{@code --verbose} output and error contract) and sharing the
 * {@code --model}/{@code --device}/{@code --dtype} options through the {@code ModelOption} and
 * {@code EngineOptions} mixins. The commands parse, validate and print; the work is done by the engine's
 * packages ({@code model}, {@code checkpoint}, {@code data}).
 */
package dev.spiel4j.cli;
