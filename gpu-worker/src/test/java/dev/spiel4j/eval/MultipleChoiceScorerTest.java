package dev.spiel4j.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.LossScorer;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The batched scorer against a brute-force per-choice computation, and against a rigged model, on stories260K. */
class MultipleChoiceScorerTest {
    private static NDManager root;
    private static LoadedModel loaded;
    private static LlamaModel model;
    private static Tokenizer tokenizer;

    @BeforeAll
    static void load() {
        root = NDManager.newBaseManager();
        loaded = GgufReader.load(SharedAssets.file("model/stories260K.gguf"));
        model = LlamaModel.create(loaded, root, DataType.FLOAT32);
        tokenizer = loaded.tokenizer();
    }

    @AfterAll
    static void close() {
        model.close();
        root.close();
    }

    /**
     * One choice alone, no padding, no windowing: the whole row through the model, the NLL of every position as in
     * LossScorer, summed over the positions that predict the choice's tokens (split as the whole text's tokens
     * after the context's, which holds for these records and is asserted).
     */
    private static double bruteForce(String context, String continuation, int maxLength) {
        int[] ctx = tokenizer.encode(context);
        int[] whole = tokenizer.encode(context + continuation);
        assertArrayEquals(ctx, Arrays.copyOf(whole, ctx.length), "the context's tokens prefix the whole's");
        int n = whole.length - ctx.length;
        int[] row = IntStream.concat(IntStream.of(tokenizer.bosId()), IntStream.of(whole)).toArray();
        if (row.length > maxLength) {
            int[] cut = new int[maxLength];
            cut[0] = row[0];
            System.arraycopy(row, row.length - (maxLength - 1), cut, 1, maxLength - 1);
            row = cut;
        }
        long[] inputs = IntStream.of(row).limit(row.length - 1).asLongStream().toArray();
        long[] targets = IntStream.of(row).skip(1).asLongStream().toArray();
        try (NDManager scope = root.newSubManager()) {
            Shape shape = new Shape(1, inputs.length);
            NDArray logits = model.forward(scope, scope.create(inputs, shape), null, LinearLayers.DENSE);
            float[] nll = LossScorer.tokenNll(logits, scope.create(targets, shape)).toFloatArray();
            double sum = 0;
            for (int i = nll.length - n; i < nll.length; i++) {
                sum -= nll[i];
            }
            return sum;
        }
    }

    private static void assertMatchesBruteForce(List<Question> questions, int maxLength) {
        MultipleChoiceResult result = new MultipleChoiceScorer(model, tokenizer, maxLength)
                .score(questions, LinearLayers.DENSE);
        assertEquals(questions.size(), result.size());
        int correct = 0;
        for (int q = 0; q < questions.size(); q++) {
            Question question = questions.get(q);
            Prediction p = result.predictions().get(q);
            assertEquals(question.id(), p.id());
            double[] expected = new double[question.continuations().size()];
            for (int c = 0; c < expected.length; c++) {
                expected[c] = bruteForce(question.context(), question.continuations().get(c), maxLength);
                assertEquals(expected[c], p.logLikelihoods()[c], 1e-3 * Math.max(1, Math.abs(expected[c])),
                        question.id() + " choice " + c);
            }
            int best = IntStream.range(0, expected.length).reduce((a, b) -> expected[b] > expected[a] ? b : a)
                    .orElseThrow();
            assertEquals(best, p.predicted(), question.id());
            correct += best == question.gold() ? 1 : 0;
        }
        assertEquals((double) correct / questions.size(), result.accuracy(), 1e-12);
    }

    @Test
    void mmluMatchesBruteForce() {
        List<Question> questions = MultipleChoiceFile.read(SharedAssets.file("eval/mmlu_zero_shot_val.jsonl"), 3);
        assertEquals(List.of(" A", " B", " C", " D"), questions.get(0).continuations());
        assertMatchesBruteForce(questions, 2048);
    }

    /** ARC's choices differ in length: the batch is padded, which must not change any score. */
    @Test
    void arcMatchesBruteForceThroughPadding() {
        List<Question> questions = MultipleChoiceFile.read(SharedAssets.file("eval/arc_easy_test.jsonl"), 4);
        assertTrue(questions.stream().anyMatch(q -> q.continuations().stream()
                .map(c -> tokenizer.encode(q.context() + c).length).distinct().count() > 1), "some padding happens");
        assertMatchesBruteForce(questions, 2048);
    }

    /** A prompt longer than the limit loses its oldest context tokens; BOS stays. */
    @Test
    void longContextIsCutFromTheLeft() {
        List<Question> questions = MultipleChoiceFile.read(SharedAssets.file("eval/mmlu_zero_shot_val.jsonl"), 2);
        int length = tokenizer.encode(questions.get(0).context()).length;
        assertTrue(length > 40, "prompt long enough to cut");
        assertMatchesBruteForce(questions, 32);
    }

    @Test
    void scoringLeavesNoArraysBehind() {
        List<Question> questions = MultipleChoiceFile.read(SharedAssets.file("eval/arc_easy_test.jsonl"), 3);
        MultipleChoiceScorer scorer = new MultipleChoiceScorer(model, tokenizer, 512);
        scorer.score(questions, LinearLayers.DENSE);
        int before = model.manager().getManagedArrays().size();
        scorer.score(questions, LinearLayers.DENSE);
        assertEquals(before, model.manager().getManagedArrays().size());
    }

    /**
     * A LinearLayers that adds a huge multiple of {@code E[t] / g} (E the tied embedding, g the final norm's
     * weight) to the last block's output: after the final RMSNorm the hidden state is E[t] up to a positive
     * factor, so the logits are E E[t]: token t wins everywhere when E[t] is its own most similar row.
     */
    private static LinearLayers riggedToward(int token) {
        float[] e = model.weights().get(ModuleNames.EMBED).get(token).toFloatArray();
        float[] g = model.weights().get(ModuleNames.FINAL_NORM).toFloatArray();
        float[] push = new float[e.length];
        for (int i = 0; i < e.length; i++) {
            push[i] = 1e4f * e[i] / g[i];
        }
        String last = ModuleNames.linear(loaded.config().layers() - 1, "mlp.down_proj");
        return (module, x, weight) -> {
            NDArray y = LinearLayers.dense(x, weight);
            return module.equals(last) ? y.add(x.getManager().create(push)) : y;
        };
    }

    /** The single token {@code word} becomes after "Answer:", checked to be its embedding's nearest row. */
    private static int singleToken(String word) {
        int[] ctx = tokenizer.encode("Answer:");
        int[] whole = tokenizer.encode("Answer: " + word);
        assertEquals(ctx.length + 1, whole.length, "' " + word + "' is one token");
        int token = whole[ctx.length];
        try (NDManager scope = root.newSubManager()) {
            NDArray e = model.weights().get(ModuleNames.EMBED);
            NDArray similarity = scope.create(e.toFloatArray(), e.getShape())
                    .matMul(scope.create(e.get(token).toFloatArray()));
            assertEquals(token, similarity.argMax().getLong(), "precondition of the rig for " + word);
        }
        return token;
    }

    @Test
    void riggedModelMakesTheKnownChoiceWin(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tiny.jsonl");
        Files.writeString(file, String.join("\n",
                "{\"subject\": \"x\", \"input\": \"Which color is the sky?\\nA. green\\nB. blue\\nC. red\\nD. "
                        + "black\\nAnswer:\", \"output\": \"B\"}",
                "",
                "{\"query\": \"Question: What does a cat say?\", \"choices\": [\"meow\", \"big big\", \"woof\"], "
                        + "\"gold\": 0}",
                "{\"query\": \"Question: Where do fish live?\", \"choices\": [\"in the water\", \"B\", "
                        + "\"happy\", \"big\"], \"gold\": 0}") + "\n");
        List<Question> questions = MultipleChoiceFile.read(file, 0);
        assertEquals(3, questions.size());
        assertEquals("tiny.jsonl:3", questions.get(1).id());
        MultipleChoiceScorer scorer = new MultipleChoiceScorer(model, tokenizer, 512);

        // Rigged toward "B", the letter B wins the MMLU question and the ARC choice "B" its question.
        MultipleChoiceResult towardB = scorer.score(questions, riggedToward(singleToken("B")));
        for (List<Integer> predicted : List.of(predictions(towardB), normalizedPredictions(towardB))) {
            assertEquals(1, predicted.get(0));
            assertEquals(1, predicted.get(2));
        }
        assertTrue(towardB.predictions().get(0).correct());
        assertEquals(0, towardB.predictions().get(2).gold());

        // Rigged toward "big", the choices made of "big" win, the same question now goes to its last choice.
        MultipleChoiceResult towardBig = scorer.score(questions, riggedToward(singleToken("big")));
        for (List<Integer> predicted : List.of(predictions(towardBig), normalizedPredictions(towardBig))) {
            assertEquals(1, predicted.get(1));
            assertEquals(3, predicted.get(2));
        }
    }

    private static List<Integer> predictions(MultipleChoiceResult result) {
        return result.predictions().stream().map(Prediction::predicted).toList();
    }

    private static List<Integer> normalizedPredictions(MultipleChoiceResult result) {
        return result.predictions().stream().map(Prediction::predictedNormalized).toList();
    }

    @Test
    void refusesAChoiceLongerThanTheLimit() {
        Question q = new Question("q:1", "Question: x\nAnswer:", List.of(" a b c d e f g h", " y"), 0);
        var e = assertThrows(IllegalArgumentException.class,
                () -> new MultipleChoiceScorer(model, tokenizer, 4).score(q, LinearLayers.DENSE));
        assertTrue(e.getMessage().startsWith("q:1: choice 0"), e.getMessage());
    }
}
