package dev.spiel4j.train;

import dev.spiel4j.data.Batch;
import dev.spiel4j.data.Batches;
import dev.spiel4j.data.ExampleEncoder;
import dev.spiel4j.data.Rejected;
import dev.spiel4j.data.TokenizedData;
import dev.spiel4j.data.TokenizedExample;
import dev.spiel4j.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The examples of a data file for in-memory training (the benchmarks' batch files), tokenized with the
 * response-only loss ({@link ExampleEncoder}, longer examples truncated from the left of the prompt), split into
 * training and evaluation examples.
 *
 * @param train    examples to train on (file order; the caller shuffles them)
 * @param eval     held-out examples for the eval loss
 * @param rejected records of either file that could not be used, with their reasons
 */
public record TrainingData(List<TokenizedExample> train, List<TokenizedExample> eval, List<Rejected> rejected) {

    public TrainingData {
        train = List.copyOf(train);
        eval = List.copyOf(eval);
        rejected = List.copyOf(rejected);
    }

    /**
     * Reads {@code data} (and {@code evalData} when not null) with rows of at most {@code seqLen} positions.
     * Without an eval file the LAST {@code evalExamples} usable examples of {@code data} are held out (file order,
     * so the split does not depend on the seed); with one, its first {@code evalExamples} examples are the eval set.
     *
     * @throws IllegalArgumentException naming the file when it has too few usable examples
     */
    public static TrainingData load(Path data, Path evalData, Tokenizer tokenizer, int seqLen, int evalExamples) {
        if (seqLen < 1) {
            throw new IllegalArgumentException("seqLen must be >= 1, is " + seqLen);
        }
        if (evalExamples < 1) {
            throw new IllegalArgumentException("the eval set needs at least one example, asked for " + evalExamples);
        }
        // a row of seqLen positions holds BOS + seqLen tokens (the last one only as a target)
        ExampleEncoder encoder = new ExampleEncoder(tokenizer, seqLen + 1, ExampleEncoder.Overflow.TRUNCATE);
        TokenizedData main = read(data, encoder);
        List<Rejected> rejected = new ArrayList<>(main.rejected());
        List<TokenizedExample> examples = main.examples();
        if (evalData == null) {
            if (examples.size() <= evalExamples) {
                throw new IllegalArgumentException("data file " + data + " has " + examples.size()
                        + " usable examples: too few to hold out " + evalExamples + " for evaluation and train on the rest");
            }
            int cut = examples.size() - evalExamples;
            return new TrainingData(examples.subList(0, cut), examples.subList(cut, examples.size()), rejected);
        }
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("data file " + data + " has no usable examples");
        }
        TokenizedData held = read(evalData, encoder);
        rejected.addAll(held.rejected());
        if (held.examples().isEmpty()) {
            throw new IllegalArgumentException("eval data file " + evalData + " has no usable examples");
        }
        List<TokenizedExample> eval = held.examples().subList(0, Math.min(evalExamples, held.examples().size()));
        return new TrainingData(examples, eval, rejected);
    }

    private static TokenizedData read(Path file, ExampleEncoder encoder) {
        try {
            return TokenizedData.load(file, encoder);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read data file " + file + ": " + e.getMessage(), e);
        }
    }

    /** The eval examples in batches of at most {@code batchSize} rows, each padded to its longest row. */
    public List<Batch> evalBatches(int batchSize) {
        return batches(eval, batchSize);
    }

    /** Consecutive batches of at most {@code batchSize} rows of {@code examples}, each padded to its longest row. */
    public static List<Batch> batches(List<TokenizedExample> examples, int batchSize) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, is " + batchSize);
        }
        List<Batch> out = new ArrayList<>();
        for (int i = 0; i < examples.size(); i += batchSize) {
            out.add(Batches.pad(examples.subList(i, Math.min(examples.size(), i + batchSize)), 0));
        }
        return out;
    }
}
