package dev.spiel4j.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.io.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * A Hugging Face {@code tokenizer.json} run by the Rust {@code tokenizers} library through DJL (offline). Encoding
 * never adds special tokens: the model code adds BOS where it wants it. BOS/EOS come from
 * {@code tokenizer_config.json} ({@code bos_token}/{@code eos_token}, resolved to ids through the vocabulary) or, if
 * it does not name them, from {@code config.json} ({@code bos_token_id}/{@code eos_token_id}).
 *
 * <p>The native tokenizer is thread-safe for encoding and decoding; it is released when this object becomes
 * unreachable (DJL frees it on finalization), since a tokenizer lives as long as its model.
 */
public final class HfTokenizer implements Tokenizer {
    /** Options for DJL: no special tokens, no truncation to DJL's default 512, no padding. */
    private static final Map<String, String> OPTIONS =
            Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false");

    private final HuggingFaceTokenizer tokenizer;
    private final int vocabSize;
    private final int bosId;
    private final int eosId;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, int vocabSize, int bosId, int eosId) {
        this.tokenizer = tokenizer;
        this.vocabSize = vocabSize;
        this.bosId = bosId;
        this.eosId = eosId;
    }

    /**
     * Loads {@code tokenizer.json} from a Hugging Face model directory, with the special-token ids from
     * {@code tokenizer_config.json} and {@code config.json} next to it.
     */
    public static HfTokenizer load(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException(file, "not found: a Hugging Face model directory needs tokenizer.json");
        }
        JsonNode spec = JsonFiles.readObject(file);
        JsonNode model = spec.path("model");
        JsonNode vocab = model.path("vocab");
        if (!vocab.isObject() && !vocab.isArray()) {
            throw new ModelFormatException(file, "field 'model.vocab' is missing or neither an object nor an array");
        }
        int vocabSize = vocabularySize(vocab, spec.path("added_tokens"));
        JsonNode tokenizerConfig = JsonFiles.readOptionalObject(dir.resolve("tokenizer_config.json"));
        JsonNode modelConfig = JsonFiles.readOptionalObject(dir.resolve("config.json"));
        int bos = specialId(file, spec, tokenizerConfig, modelConfig, "bos");
        int eos = specialId(file, spec, tokenizerConfig, modelConfig, "eos");
        HuggingFaceTokenizer hf;
        try {
            hf = HuggingFaceTokenizer.newInstance(file, OPTIONS);
        } catch (IOException | RuntimeException e) {
            throw new ModelFormatException(file, "the tokenizers library refused it: " + e.getMessage(), e);
        }
        return new HfTokenizer(hf, vocabSize, bos, eos);
    }

    @Override
    public int[] encode(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    @Override
    public String decode(int[] ids) {
        long[] wide = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            wide[i] = ids[i];
        }
        return tokenizer.decode(wide, true);
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public int bosId() {
        return bosId;
    }

    @Override
    public int eosId() {
        return eosId;
    }

    /** One more than the largest id in the model vocabulary or the added tokens. */
    private static int vocabularySize(JsonNode vocab, JsonNode addedTokens) {
        int max = vocab.isArray() ? vocab.size() - 1 : -1; // Unigram: the id is the position
        if (vocab.isObject()) {
            for (JsonNode id : vocab) {
                max = Math.max(max, id.asInt());
            }
        }
        for (JsonNode t : addedTokens) {
            max = Math.max(max, t.path("id").asInt(-1));
        }
        return max + 1;
    }

    private static int specialId(Path file, JsonNode spec, JsonNode tokenizerConfig, JsonNode modelConfig,
                                 String which) {
        JsonNode token = tokenizerConfig.path(which + "_token");
        String content = token.isTextual() ? token.asText() : token.path("content").asText(null);
        if (content != null) {
            return idOf(spec, content).orElseThrow(() -> new ModelFormatException(file,
                    which + "_token '" + content + "' from tokenizer_config.json is not in the vocabulary"));
        }
        JsonNode id = modelConfig.path(which + "_token_id");
        if (id.isArray() && !id.isEmpty()) {
            id = id.get(0); // several EOS ids (e.g. LLaMA 3): the first is the canonical one
        }
        if (id.isIntegralNumber()) {
            return id.asInt();
        }
        throw new ModelFormatException(file, "no " + which + " token: neither tokenizer_config.json '" + which
                + "_token' nor config.json '" + which + "_token_id' names one");
    }

    private static Optional<Integer> idOf(JsonNode spec, String content) {
        for (JsonNode t : spec.path("added_tokens")) {
            if (content.equals(t.path("content").asText())) {
                return Optional.of(t.path("id").asInt());
            }
        }
        JsonNode vocab = spec.path("model").path("vocab");
        if (vocab.isObject() && vocab.has(content)) {
            return Optional.of(vocab.get(content).asInt());
        }
        for (int i = 0; vocab.isArray() && i < vocab.size(); i++) {
            if (content.equals(vocab.get(i).path(0).asText())) {
                return Optional.of(i);
            }
        }
        return Optional.empty();
    }
}
