package dev.spiel4j.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.data.Batch;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.ShufflePosition;
import dev.spiel4j.data.ShuffledSampler;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.tokenizer.Tokenizer;
import dev.spiel4j.train.TrainingData;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Pre-tokenized train and eval batches as one JSON file, so that the spiel4j child and the Python peer see
 * identical tokens: {@code {"train": [batch...], "eval": [batch...]}}, each batch
 * {@code {"size", "seq_len", "inputs", "targets", "loss_mask", "attention_mask", "example_ids"}} with the arrays
 * flat and row-major like {@link Batch}.
 */
public record BatchFile(List<Batch> train, List<Batch> eval) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public BatchFile {
        if (train.isEmpty()) {
            throw new IllegalArgumentException("a batch file needs at least one train batch");
        }
        train = List.copyOf(train);
        eval = List.copyOf(eval);
    }

    /** Real tokens (attention mask 1) in a batch: the tokens a step processes, for tokens/s. */
    static long realTokens(Batch b) {
        long n = 0;
        for (float m : b.attentionMask()) {
            n += m > 0 ? 1 : 0;
        }
        return n;
    }

    /**
     * Seeded uniformly random full-length token batches for shape-only benchmarks (random models, where the
     * content does not matter): every position real, loss on every position.
     */
    static BatchFile synthetic(long seed, int trainCount, int evalCount, int size, int seqLen, int vocab) {
        SplittableRandom rnd = new SplittableRandom(seed);
        List<Batch> train = new ArrayList<>(), eval = new ArrayList<>();
        for (int i = 0; i < trainCount + evalCount; i++) {
            int n = size * seqLen;
            long[] tokens = new long[n + 1];
            for (int j = 0; j <= n; j++) {
                tokens[j] = rnd.nextInt(vocab);
            }
            long[] inputs = new long[n], targets = new long[n];
            float[] ones = new float[n];
            Arrays.fill(ones, 1f);
            for (int r = 0; r < size; r++) {
                for (int t = 0; t < seqLen; t++) {
                    inputs[r * seqLen + t] = tokens[r * seqLen + t];
                    targets[r * seqLen + t] = tokens[r * seqLen + t + 1];
                }
            }
            List<String> ids = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                ids.add("synthetic-" + i + "-" + r);
            }
            Batch b = new Batch(size, seqLen, inputs, targets, ones.clone(), ones, ids);
            (i < trainCount ? train : eval).add(b);
        }
        return new BatchFile(train, eval);
    }

    /**
     * Real instruction data for the real-model configurations, prepared as the {@code train} command prepares it
     * ({@link TrainingData}: response-only loss, rows of at most {@code seqLen} positions): the last
     * {@code evalBatches * size} examples of {@code data} are held out as the eval batches, and
     * {@code trainBatches} batches of {@code size} examples are drawn from the rest in a seeded shuffled order.
     * Every batch is padded to its longest row.
     */
    public static BatchFile instructions(Path data, Tokenizer tokenizer, int seqLen, int size, int trainBatches,
                                         int evalBatches, long seed) {
        if (trainBatches < 1 || evalBatches < 0 || size < 1) {
            throw new IllegalArgumentException("instruction batches need size >= 1, train batches >= 1 and eval"
                    + " batches >= 0; got size " + size + ", " + trainBatches + " train, " + evalBatches + " eval");
        }
        TrainingData examples = TrainingData.load(data, null, tokenizer, seqLen, Math.max(1, evalBatches * size));
        ShuffledSampler<TokenizedExample> sampler = new ShuffledSampler<>(examples.train(), seed);
        ShufflePosition at = ShufflePosition.START;
        List<Batch> train = new ArrayList<>();
        for (int i = 0; i < trainBatches; i++) {
            ShuffledSampler.Draw<TokenizedExample> draw = sampler.draw(at, size);
            train.add(Batches.pad(draw.items(), 0));
            at = draw.next();
        }
        return new BatchFile(train, evalBatches == 0 ? List.of() : examples.evalBatches(size));
    }

    public void write(Path file) {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode t = root.putArray("train");
        train.forEach(b -> t.add(toJson(b)));
        ArrayNode e = root.putArray("eval");
        eval.forEach(b -> e.add(toJson(b)));
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            JSON.writeValue(file.toFile(), root);
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot write batch file " + file, ex);
        }
    }

    /** Reads a batch file; malformed content fails with a message naming the file and the batch. */
    public static BatchFile read(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException("batch file " + file + " is not readable JSON: " + e.getMessage(), e);
        }
        return new BatchFile(fromJson(file, root, "train"), fromJson(file, root, "eval"));
    }

    private static ObjectNode toJson(Batch b) {
        ObjectNode n = JSON.createObjectNode();
        n.put("size", b.size());
        n.put("seq_len", b.seqLen());
        ArrayNode inputs = n.putArray("inputs"), targets = n.putArray("targets");
        ArrayNode loss = n.putArray("loss_mask"), attn = n.putArray("attention_mask");
        for (int i = 0; i < b.inputs().length; i++) {
            inputs.add(b.inputs()[i]);
            targets.add(b.targets()[i]);
            loss.add(b.lossMask()[i]);
            attn.add(b.attentionMask()[i]);
        }
        ArrayNode ids = n.putArray("example_ids");
        b.exampleIds().forEach(ids::add);
        return n;
    }

    private static List<Batch> fromJson(Path file, JsonNode root, String split) {
        JsonNode arr = root.path(split);
        if (!arr.isArray()) {
            throw new IllegalArgumentException("batch file " + file + ": \"" + split + "\" is missing or not an array");
        }
        List<Batch> out = new ArrayList<>();
        for (int i = 0; i < arr.size(); i++) {
            JsonNode b = arr.get(i);
            String where = "batch file " + file + ", " + split + "[" + i + "]";
            int size = b.path("size").asInt(-1), seqLen = b.path("seq_len").asInt(-1);
            if (size <= 0 || seqLen <= 0) {
                throw new IllegalArgumentException(where + ": size and seq_len must be positive integers");
            }
            int n = size * seqLen;
            long[] inputs = longs(b, "inputs", n, where), targets = longs(b, "targets", n, where);
            float[] loss = floats(b, "loss_mask", n, where), attn = floats(b, "attention_mask", n, where);
            List<String> ids = new ArrayList<>();
            b.path("example_ids").forEach(id -> ids.add(id.asText()));
            if (ids.isEmpty()) {
                for (int r = 0; r < size; r++) {
                    ids.add(split + "-" + i + "-" + r);
                }
            }
            try {
                out.add(new Batch(size, seqLen, inputs, targets, loss, attn, ids));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
            }
        }
        return out;
    }

    private static JsonNode array(JsonNode b, String key, int n, String where) {
        JsonNode a = b.path(key);
        if (!a.isArray() || a.size() != n) {
            throw new IllegalArgumentException(where + ": \"" + key + "\" must be an array of size*seq_len = " + n
                    + " values, got " + (a.isArray() ? a.size() + " values" : a.getNodeType()));
        }
        return a;
    }

    private static long[] longs(JsonNode b, String key, int n, String where) {
        JsonNode a = array(b, key, n, where);
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            out[i] = a.get(i).asLong();
        }
        return out;
    }

    private static float[] floats(JsonNode b, String key, int n, String where) {
        JsonNode a = array(b, key, n, where);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) a.get(i).asDouble();
        }
        return out;
    }
}
