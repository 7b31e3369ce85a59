package dev.spiel4j.cli;

import dev.spiel4j.checkpoint.FineTuning;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.model.GenerationConfig;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.tokenizer.Tokenizer;
import dev.spiel4j.train.EngineModel;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code generate}: continues a prompt with the base model, optionally with sparse fine-tunings merged into its
 * weights. The context is BOS followed by the encoded prompt (an empty prompt is BOS alone); the result is the ids
 * generated after it, up to EOS (not included) or {@code --max-new-tokens}, and their text as it continues the
 * prompt (so prompt + text reads right). Without {@code --json} it prints the prompt and its continuation.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Generate text after a prompt. JSON: {\"ids\": [...], \"text\": \"...\"}.")
final class GenerateCommand extends CliCommand {

    @Mixin
    EngineOptions engine;

    @Option(names = "--sft", paramLabel = "PATH", description = {
            "A sparse fine-tuning of this base to merge into the weights; repeat to add several.", SftFiles.PATH_HELP})
    List<Path> sfts = new ArrayList<>();

    @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The prompt (may be empty).")
    String prompt;

    @Option(names = "--max-new-tokens", required = true, paramLabel = "N", description = "Tokens to generate at most.")
    int maxNewTokens;

    @ArgGroup(exclusive = true)
    Decoding decoding = new Decoding();

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Sampling seed. Default: 0.")
    long seed;

    /** Either {@code --greedy} or sampling settings, not both. */
    static final class Decoding {
        @Option(names = "--greedy", description = "Always take the most likely token.")
        boolean greedy;

        @ArgGroup(exclusive = false)
        Sampling sampling = new Sampling();
    }

    /** Sampling: the default when --greedy is absent. */
    static final class Sampling {
        @Option(names = "--temperature", paramLabel = "T", defaultValue = "1.0",
                description = "Divide the logits by T before sampling (0 = greedy). Default: 1.0.")
        float temperature = 1f;

        @Option(names = "--top-p", paramLabel = "P", defaultValue = "1.0",
                description = "Sample from the smallest set of tokens whose probability reaches P. Default: 1.0.")
        float topP = 1f;
    }

    @Override
    Result run() {
        GenerationConfig config = generationConfig();
        engine.validate();
        List<Path> sftFiles = sfts.stream().map(this::requireSft).toList();
        LoadedModel loaded = engine.model.load();
        Tokenizer tokenizer = loaded.tokenizer();
        int[] context = context(tokenizer, prompt);
        List<FineTuning> tunings = SftFiles.loadAnyFor(sftFiles, loaded);
        int[] ids;
        try (EngineModel engineModel = engine.open(loaded)) {
            LlamaModel model = engineModel.model();
            SftFiles.mergeInto(model, tunings);
            ids = model.generate(context, tokenizer.eosId(), config, LinearLayers.DENSE);
        }
        String whole = tokenizer.decode(concat(context, ids));
        String head = tokenizer.decode(context);
        // The continuation as it reads after the prompt: decoding the new ids alone would drop the space that
        // starts a word piece (SentencePiece strips a leading space), giving "Lily andTom".
        String text = whole.startsWith(head) ? whole.substring(head.length()) : tokenizer.decode(ids);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("ids", ids);
        json.put("text", text);
        return new Result(whole, json);
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private GenerationConfig generationConfig() {
        if (maxNewTokens < 0) {
            throw usage("--max-new-tokens: must be >= 0, got " + maxNewTokens);
        }
        if (decoding.greedy) {
            return GenerationConfig.greedy(maxNewTokens);
        }
        float t = decoding.sampling.temperature;
        float p = decoding.sampling.topP;
        if (!(t >= 0) || Float.isInfinite(t)) {
            throw usage("--temperature: must be a finite number >= 0, got " + t);
        }
        if (!(p > 0 && p <= 1)) {
            throw usage("--top-p: must be in (0, 1], got " + p);
        }
        return new GenerationConfig(maxNewTokens, t, p, seed);
    }

    /** BOS, then the prompt's tokens. */
    static int[] context(Tokenizer tokenizer, String prompt) {
        int[] encoded = prompt.isEmpty() ? new int[0] : tokenizer.encode(prompt);
        int[] context = new int[encoded.length + 1];
        context[0] = tokenizer.bosId();
        System.arraycopy(encoded, 0, context, 1, encoded.length);
        return context;
    }
}
