package dev.spiel4j.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.checkpoint.FineTuning;
import dev.spiel4j.data.Batch;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.ExampleEncoder;
import dev.spiel4j.data.ExampleFileReader;
import dev.spiel4j.data.Rejected;
import dev.spiel4j.data.TokenizedData;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.LossScorer;
import dev.spiel4j.train.EngineModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code score}: mean next-token negative log-likelihood of a data file under the model (optionally with a sparse
 * fine-tuning merged in).
 * <ul>
 *   <li>Plain text ({@code .txt}): the golden procedure of {@link LossScorer}: the first {@code --max-chars}
 *       characters, blank lines collapsed, one token stream cut into {@code --max-chunks} BOS-prefixed chunks of
 *       {@code --seq-len} tokens, every token scored.</li>
 *   <li>Instruction records ({@code .json} array or {@code .jsonl}): each example encoded as in training
 *       ({@link ExampleEncoder}: BOS + prompt + response + EOS, at most {@code --seq-len + 1} tokens, the prompt
 *       truncated from the left when longer) and only the response tokens and the EOS scored;
 *       {@code --max-chunks} caps the number of examples, {@code --max-chars} does not apply.</li>
 * </ul>
 */
@Command(name = "score", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Mean next-token NLL of a data file. JSON: {\"mean_nll\": x, \"tokens\": n}.")
final class ScoreCommand extends CliCommand {
    /** Instruction examples per forward pass. */
    private static final int BATCH = 8;

    @Mixin
    EngineOptions engine;

    @Option(names = "--sft", paramLabel = "PATH", description = {
            "A sparse fine-tuning of this base to merge first.", SftFiles.PATH_HELP})
    Path sft;

    @Option(names = "--data", required = true, paramLabel = "FILE",
            description = {"Plain text (.txt) or instruction records (.json array, .jsonl).", HubInputs.HELP})
    String dataLocation;

    @Option(names = "--seq-len", required = true, paramLabel = "N", description = "Tokens per chunk or example.")
    int seqLen;

    @Option(names = "--max-chars", paramLabel = "C", defaultValue = "0",
            description = "Text only: use the first C characters (0 = all).")
    int maxChars;

    @Option(names = "--max-chunks", paramLabel = "K", defaultValue = "0",
            description = "Score at most K chunks (text) or examples (instruction records); 0 = all.")
    int maxChunks;

    @Override
    Result run() throws IOException {
        engine.validate();
        Path data = requireExisting(HubInputs.resolve(dataLocation, "--data", spec.commandLine()), "--data", false);
        List<Path> sftFiles = sft == null ? List.of() : List.of(requireSft(sft));
        ExampleFileReader.Format format;
        try {
            format = ExampleFileReader.Format.of(data);
        } catch (IllegalArgumentException e) {
            throw usage("--data: " + e.getMessage());
        }
        if (seqLen < 1) {
            throw usage("--seq-len: must be >= 1, got " + seqLen);
        }
        if (maxChars < 0 || maxChunks < 0) {
            throw usage((maxChars < 0 ? "--max-chars" : "--max-chunks") + ": must be >= 0");
        }
        if (format != ExampleFileReader.Format.TEXT && maxChars > 0) {
            throw usage("--max-chars applies to plain text only, not to instruction records in " + data);
        }
        LoadedModel loaded = engine.model.load();
        if (seqLen + 1 > loaded.config().contextLength()) {
            throw usage("--seq-len: " + seqLen + " does not fit the model's context length "
                    + loaded.config().contextLength() + " (BOS + N tokens)");
        }
        List<FineTuning> tunings = SftFiles.loadAnyFor(sftFiles, loaded);
        LossScorer.Score score;
        try (EngineModel engineModel = engine.open(loaded)) {
            LlamaModel model = engineModel.model();
            SftFiles.mergeInto(model, tunings);
            score = format == ExampleFileReader.Format.TEXT
                    ? LossScorer.score(model, loaded.tokenizer(), Files.readString(data, StandardCharsets.UTF_8),
                    seqLen, maxChars, maxChunks, LinearLayers.DENSE)
                    : scoreResponses(model, loaded, data);
        }
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("mean_nll", score.meanNll());
        json.put("tokens", score.tokens());
        return new Result(String.format(Locale.ROOT, "mean NLL %.4f nats/token over %d tokens",
                score.meanNll(), score.tokens()), json);
    }

    /** NLL averaged over the response tokens (and EOS) of every example. */
    private LossScorer.Score scoreResponses(LlamaModel model, LoadedModel loaded, Path data) throws IOException {
        ExampleEncoder encoder = new ExampleEncoder(loaded.tokenizer(), seqLen + 1, ExampleEncoder.Overflow.TRUNCATE);
        TokenizedData tokenized = TokenizedData.load(data, encoder);
        if (!tokenized.rejected().isEmpty()) {
            Rejected first = tokenized.rejected().get(0);
            progress("score: skipped " + tokenized.rejected().size() + " unusable record(s) of " + data
                    + ", first: " + first.sourcePosition() + ": " + first.reason());
        }
        List<TokenizedExample> examples = tokenized.examples();
        if (maxChunks > 0 && examples.size() > maxChunks) {
            examples = examples.subList(0, maxChunks);
        }
        if (examples.isEmpty()) {
            throw new IllegalArgumentException(data + ": no usable examples to score");
        }
        double total = 0;
        long tokens = 0;
        for (int first = 0; first < examples.size(); first += BATCH) {
            Batch b = Batches.pad(examples.subList(first, Math.min(first + BATCH, examples.size())), 0);
            Shape shape = new Shape(b.size(), b.seqLen());
            try (NDManager scope = model.manager().newSubManager()) {
                NDArray logits = model.forward(scope, EngineArrays.of(scope, b.inputs(), shape),
                        EngineArrays.of(scope, b.attentionMask(), shape), LinearLayers.DENSE);
                NDArray nll = LossScorer.tokenNll(logits, EngineArrays.of(scope, b.targets(), shape));
                total += nll.mul(EngineArrays.of(scope, b.lossMask(), shape)).sum().getFloat();
            }
            tokens += b.lossTokens();
        }
        return new LossScorer.Score(total / tokens, tokens);
    }
}
