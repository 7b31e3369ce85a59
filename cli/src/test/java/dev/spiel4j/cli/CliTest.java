package dev.spiel4j.cli;

import org.junit.jupiter.api.Tag;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.checkpoint.TrainingStateFile;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.service.CheckpointStore;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line run in-process (Main.execute) against the real stories260K model and its golden values. */
@Tag("kafka")
class CliTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String GGUF = SharedAssets.file("model/stories260K.gguf").toString();
    private static final String HF = SharedAssets.file("model/stories260K-hf").toString();

    private static LoadedModel hf;

    /** One command's exit code and captured streams. */
    record Run(int code, String out, String err) {
        /** The last stdout line parsed as JSON, after checking stdout holds nothing else. */
        JsonNode json() throws IOException {
            assertEquals(0, code, () -> "exit code; stderr: " + err);
            String[] lines = out.strip().split("\n");
            assertEquals(1, lines.length, () -> "stdout should hold only the JSON line: " + out);
            return JSON.readTree(lines[0]);
        }
    }

    static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.execute(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8), args);
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @BeforeAll
    static void loadHf() {
        hf = ModelLoader.load(Path.of(HF));
    }

    private static int[] ids(JsonNode node) {
        int[] ids = new int[node.get("ids").size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = node.get("ids").get(i).asInt();
        }
        return ids;
    }

    private static int[] greedy(String model, String... sfts) throws IOException {
        List<String> args = new ArrayList<>(List.of("generate", "--model", model, "--prompt", "",
                "--max-new-tokens", "40", "--greedy", "--json"));
        for (String s : sfts) {
            args.add("--sft");
            args.add(s);
        }
        return ids(run(args.toArray(String[]::new)).json());
    }

    /** The golden file's line "greedy 40 from BOS ids [...]", from the independent float64 implementation. */
    private static int[] goldenGreedy() throws IOException {
        String ref = Files.readString(SharedAssets.file("golden/stories260K_reference.txt"));
        Matcher m = Pattern.compile("greedy 40 from BOS ids \\[([0-9, ]+)]").matcher(ref);
        assertTrue(m.find(), "golden greedy ids line");
        return Arrays.stream(m.group(1).split(",\\s*")).mapToInt(Integer::parseInt).toArray();
    }

    /** A few seeded deltas on every q_proj and down_proj, large enough to change greedy decoding. */
    private static SparseFineTuning handMade(LoadedModel base, String fingerprint, long seed) {
        Random rnd = new Random(seed);
        List<DeltaTensor> deltas = new ArrayList<>();
        for (int l = 0; l < base.config().layers(); l++) {
            for (String shortName : List.of("self_attn.q_proj", "mlp.down_proj")) {
                String module = ModuleNames.linear(l, shortName);
                long[] shape = base.tensors().get(module + ".weight").shape();
                int rows = (int) shape[0];
                int cols = (int) shape[1];
                Set<Long> picked = new LinkedHashSet<>();
                while (picked.size() < 40) {
                    picked.add((long) rnd.nextInt(rows * cols));
                }
                float[] values = new float[picked.size()];
                for (int j = 0; j < values.length; j++) {
                    values[j] = (float) rnd.nextGaussian() * 0.5f;
                }
                deltas.add(new DeltaTensor(module, rows, cols,
                        picked.stream().mapToLong(Long::longValue).toArray(), values));
            }
        }
        return new SparseFineTuning(fingerprint, "hand-made", Map.of("seed", Long.toString(seed)), deltas);
    }

    @Test
    void generateReproducesTheGoldenGreedyIds() throws IOException {
        assertArrayEquals(goldenGreedy(), greedy(GGUF));
    }

    @Test
    void generatedTextContinuesThePromptWithItsSpaces() throws IOException {
        String[] args = {"generate", "--model", GGUF, "--prompt", "Lily and", "--max-new-tokens", "10", "--greedy"};
        Run human = run(args);
        assertEquals(0, human.code(), human.err());
        JsonNode j = run(Stream.concat(Arrays.stream(args), Stream.of("--json")).toArray(String[]::new)).json();
        String text = j.get("text").asText();
        assertEquals(ModelLoader.load(Path.of(GGUF)).tokenizer().decode(ids(j)).strip(), text.strip());
        assertTrue(text.startsWith(" "), "a new word after the prompt keeps its space: '" + text + "'");
        assertEquals("Lily and" + text + "\n", human.out());
    }

    @Test
    void sampledGenerationIsDeterministicForASeed() throws IOException {
        String[] args = {"generate", "--model", GGUF, "--prompt", "Lily", "--max-new-tokens", "20",
                "--temperature", "1.0", "--seed", "3", "--json"};
        assertArrayEquals(ids(run(args).json()), ids(run(args).json()));
    }

    @Test
    void scoreReproducesTheGoldenLoss() throws IOException {
        JsonNode j = run("score", "--model", GGUF, "--data",
                SharedAssets.file("data/tinystories_valid_head.txt").toString(), "--seq-len", "511",
                "--max-chars", "12000", "--max-chunks", "10", "--json").json();
        assertEquals(1.3182, j.get("mean_nll").asDouble(), 0.002);
        assertEquals(5110, j.get("tokens").asLong());
    }

    @Test
    void qSpielFromTheCommandLineScoresAndTrainsOnAnNf4Base(@TempDir Path dir) throws IOException {
        String text = SharedAssets.file("data/tinystories_valid_head.txt").toString();
        JsonNode nf4 = run("score", "--model", GGUF, "--data", text, "--seq-len", "511", "--max-chars", "12000",
                "--max-chunks", "10", "--quantize", "nf4", "--json").json();
        // 4-bit weights cost a little of the golden 1.3182, not everything
        double loss = nf4.get("mean_nll").asDouble();
        assertTrue(loss > 1.3182 + 0.002 && loss < 1.3182 + 0.5, "NF4 mean NLL " + loss);
        assertEquals(5110, nf4.get("tokens").asLong());

        Path config = Files.writeString(dir.resolve("run.conf"), "spiel4j.device = cpu\n");
        for (String method : List.of("spiel-ag", "lora")) {
            Run train = run("train", "--config", config.toString(), "--model", GGUF, "--data", text, "--method", method,
                    "--quantize", "nf4", "--out", dir.resolve("runs").toString(), "--run-id", "q" + method, "--steps",
                    "3", "--batch-size", "2", "--seq-len", "32", "eval.interval=0", "--json");
            assertEquals(0, train.code(), train::err);
            assertEquals("COMPLETED", train.json().get("outcome").asText(), train.out());
        }
        Run full = run("train", "--config", config.toString(), "--model", GGUF, "--data", text, "--method", "full",
                "--quantize", "nf4", "--out", dir.resolve("runs").toString(), "--run-id", "qfull", "--steps", "2",
                "--batch-size", "2", "--seq-len", "32", "eval.interval=0");
        assertEquals(1, full.code(), full.out());
        assertTrue(full.err().contains("full fine-tuning needs every weight held densely"), full.err());
        Run bad = run("score", "--model", GGUF, "--data", text, "--quantize", "int8");
        assertEquals(2, bad.code(), bad.err());
        assertTrue(bad.err().contains("--quantize") && bad.err().contains("int8"), bad.err());
    }

    @Test
    void aLoraRunLeavesAnAdapterThatGenerateScoreAndMergeApply(@TempDir Path dir) throws IOException {
        String text = SharedAssets.file("data/tinystories_valid_head.txt").toString();
        Path config = Files.writeString(dir.resolve("run.conf"), "spiel4j.device = cpu\n");
        Path runs = dir.resolve("runs");
        Run train = run("train", "--config", config.toString(), "--model", GGUF, "--data", text, "--method", "lora",
                "--lr", "5e-2", "--out", runs.toString(), "--run-id", "lora-run", "--steps", "4", "--batch-size", "2",
                "--seq-len", "32", "eval.interval=0", "--json");
        assertEquals(0, train.code(), train::err);
        Path checkpoint = Path.of(train.json().get("checkpoint").asText());
        assertTrue(Files.isRegularFile(checkpoint.resolve("adapter_model.safetensors")), checkpoint.toString());
        assertEquals("LORA", JSON.readTree(checkpoint.resolve("adapter_config.json").toFile()).get("peft_type")
                .asText());

        Path runDir = runs.resolve("lora-run");
        assertFalse(Arrays.equals(greedy(GGUF), greedy(GGUF, runDir.toString())), "the trained LoRA changes decoding");
        assertArrayEquals(greedy(GGUF, runDir.toString()), greedy(GGUF, checkpoint.toString()));
        String[] score = {"score", "--model", GGUF, "--data", text, "--seq-len", "63", "--max-chars", "4000",
                "--max-chunks", "4", "--json"};
        double base = run(score).json().get("mean_nll").asDouble();
        List<String> withAdapter = new ArrayList<>(List.of(score));
        withAdapter.addAll(List.of("--sft", checkpoint.toString()));
        double tuned = run(withAdapter.toArray(String[]::new)).json().get("mean_nll").asDouble();
        assertTrue(Math.abs(tuned - base) > 1e-3, base + " vs " + tuned);
        JsonNode inspected = run("inspect", checkpoint.toString(), "--json").json();
        assertEquals("LORA", inspected.get("peft_type").asText());
        assertEquals(train.json().get("trainable_params").asLong(), inspected.get("parameters").asLong());
        // merged into the weights (the GGUF base's q/k rows mapped to Hugging Face's) it decodes as applied
        Path merged = dir.resolve("merged");
        JsonNode m = run("merge", "--model", GGUF, "--sft", runDir.toString(), "--out", merged.toString(), "--json")
                .json();
        assertEquals("LORA", m.get("adapter").asText());
        assertArrayEquals(greedy(GGUF, runDir.toString()), greedy(merged.toString()));
        Run compose = run("compose", "--sft", runDir.toString(), "--out", dir.resolve("c").toString());
        assertEquals(1, compose.code(), compose.err());
        assertTrue(compose.err().contains("compose adds sparse fine-tunings only"), compose.err());
    }

    @Test
    void aSpielRunStartsFromAnotherRunsDeltas(@TempDir Path dir) throws IOException {
        String text = SharedAssets.file("data/tinystories_valid_head.txt").toString();
        Path config = Files.writeString(dir.resolve("run.conf"), "spiel4j.device = cpu\n");
        Path runs = dir.resolve("runs");
        String[] common = {"train", "--config", config.toString(), "--model", GGUF, "--data", text, "--method",
                "spiel-ag", "--lr", "2e-2", "--out", runs.toString(), "--steps", "2", "--batch-size", "2", "--seq-len",
                "32", "eval.interval=2", "--json"};
        List<String> first = new ArrayList<>(List.of(common));
        first.addAll(List.of("--run-id", "first"));
        JsonNode a = run(first.toArray(String[]::new)).json();
        List<String> second = new ArrayList<>(List.of(common));
        second.addAll(List.of("--run-id", "second", "--init-from", a.get("checkpoint").asText()));
        Run b = run(second.toArray(String[]::new));
        assertEquals(0, b.code(), b.err());
        // the second run's loss before any step is the first run's after its last one: it starts from those deltas
        assertEquals(a.get("eval_loss_after").asDouble(), b.json().get("eval_loss_before").asDouble(), 1e-6);
        assertTrue(Math.abs(a.get("eval_loss_before").asDouble() - a.get("eval_loss_after").asDouble()) > 1e-4,
                "the first run must have moved the held-out loss for this to mean anything");
        second.set(second.indexOf("spiel-ag"), "lora");
        second.set(second.indexOf("second"), "third");
        Run lora = run(second.toArray(String[]::new));
        assertEquals(1, lora.code(), lora.err());
        assertTrue(lora.err().contains("only spiel-ag and spiel-ma"), lora.err());
    }

    @Test
    void scoreOfInstructionRecordsCountsResponseTokensAndIgnoresPadding(@TempDir Path dir) throws IOException {
        String a = "{\"prompt\": \"Tell a story about a cat.\", \"response\": \"The cat sat in the sun.\"}";
        String b = "{\"prompt\": \"Who is Lily?\", \"response\": \"Lily is a little girl who loves to play"
                + " outside with her dog every day.\"}";
        Path fa = Files.writeString(dir.resolve("a.jsonl"), a + "\n");
        Path fb = Files.writeString(dir.resolve("b.jsonl"), b + "\n");
        Path both = Files.writeString(dir.resolve("both.jsonl"), a + "\n" + b + "\n");
        JsonNode ja = score(fa);
        JsonNode jb = score(fb);
        JsonNode jboth = score(both);
        // loss on the response and the EOS only
        assertEquals(hf.tokenizer().encode("The cat sat in the sun.").length + 1, ja.get("tokens").asLong());
        // scored together (one padded batch) = the token-weighted mean of each alone
        long ta = ja.get("tokens").asLong();
        long tb = jb.get("tokens").asLong();
        assertEquals(ta + tb, jboth.get("tokens").asLong());
        double expected = (ja.get("mean_nll").asDouble() * ta + jb.get("mean_nll").asDouble() * tb) / (ta + tb);
        assertEquals(expected, jboth.get("mean_nll").asDouble(), 1e-4);
    }

    private static JsonNode score(Path data) throws IOException {
        return run("score", "--model", HF, "--data", data.toString(), "--seq-len", "128", "--json").json();
    }

    @Test
    void unknownFlagIsAUsageErrorNamingTheFlag() {
        Run r = run("generate", "--model", GGUF, "--prompt", "", "--max-new-tokens", "4", "--bogus");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--bogus"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void missingFileIsAUsageErrorNamingTheFile() {
        Run r = run("generate", "--model", "no/such/model.gguf", "--prompt", "", "--max-new-tokens", "4");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--model") && r.err().contains("no/such/model.gguf"), r.err());
        Run s = run("score", "--model", GGUF, "--data", "missing.txt", "--seq-len", "16");
        assertEquals(2, s.code());
        assertTrue(s.err().contains("--data") && s.err().contains("missing.txt"), s.err());
    }

    @Test
    void badValuesAreUsageErrorsNamingTheFlag() {
        Run notANumber = run("generate", "--model", GGUF, "--prompt", "", "--max-new-tokens", "many");
        assertEquals(2, notANumber.code());
        assertTrue(notANumber.err().contains("--max-new-tokens"), notANumber.err());
        Run device = run("generate", "--model", GGUF, "--prompt", "", "--max-new-tokens", "4", "--device", "tpu");
        assertEquals(2, device.code());
        assertTrue(device.err().contains("--device"), device.err());
        Run topP = run("generate", "--model", GGUF, "--prompt", "", "--max-new-tokens", "4", "--top-p", "1.5");
        assertEquals(2, topP.code());
        assertTrue(topP.err().contains("--top-p"), topP.err());
        Run both = run("generate", "--model", GGUF, "--prompt", "", "--max-new-tokens", "4", "--greedy",
                "--temperature", "0.5");
        assertEquals(2, both.code());
        assertTrue(both.err().contains("--greedy") && both.err().contains("mutually exclusive"), both.err());
        Run gpu = run("generate", "--model", GGUF, "--prompt", "", "--max-new-tokens", "4", "--device", "gpu:99");
        assertEquals(1, gpu.code(), "a well-formed device the engine lacks is a runtime failure");
        assertTrue(gpu.err().contains("--device gpu:99"), gpu.err());
        Run dtype = run("score", "--model", GGUF, "--data", GGUF, "--seq-len", "8", "--dtype", "bfloat16");
        assertEquals(2, dtype.code());
        assertTrue(dtype.err().contains("--dtype"), dtype.err());
        Run timedRuns = run("bench", "--timed-runs", "0");
        assertEquals(2, timedRuns.code());
        assertTrue(timedRuns.err().contains("--timed-runs: must be at least 1, got 0"), timedRuns.err());
    }

    @Test
    void helpWorksEverywhere() {
        for (String cmd : List.of("generate", "score", "merge", "compose", "export", "inspect")) {
            Run r = run(cmd, "--help");
            assertEquals(0, r.code(), cmd);
            assertTrue(r.out().contains("Usage: spiel4j " + cmd), r.out());
        }
        Run top = run("--help");
        assertEquals(0, top.code());
        assertTrue(top.out().contains("generate") && top.out().contains("inspect"), top.out());
        assertEquals(2, run().code());
    }

    /**
     * A training run that ends FAILED (here: the trainer fails before step 2, is restarted once, the one restart
     * allowed without a new checkpoint, and fails again before step 1) still prints its summary, with the outcome
     * and the failure naming the step, its examples and the cause; the progress on stderr says so; exit code 1.
     */
    @Test
    void aFailedTrainingRunPrintsItsSummaryWithTheFailureAndExits1(@TempDir Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            lines.add("{\"prompt\":\"What comes after " + i + "?\\n\",\"response\":\"" + (i + 1) + ".\"}");
        }
        Path data = Files.write(dir.resolve("train.jsonl"), lines, StandardCharsets.UTF_8);
        Path config = Files.writeString(dir.resolve("run.conf"), "spiel4j.device = cpu\n");
        Run r = run("train", "--config", config.toString(), "--model", GGUF, "--data", data.toString(),
                "--out", dir.resolve("runs").toString(), "--run-id", "cli-failing", "--steps", "4", "--batch-size", "2",
                "--seq-len", "32", "eval.interval=0", "supervision.max-restarts-without-progress=1",
                "debug.fail-at-steps=[2, 1]", "--json");
        assertEquals(1, r.code(), () -> "exit code; stderr: " + r.err());
        String[] out = r.out().strip().split("\n");
        assertEquals(1, out.length, () -> "stdout should hold only the JSON line: " + r.out());
        JsonNode json = JSON.readTree(out[0]);
        assertEquals("FAILED", json.get("outcome").asText());
        assertEquals("cli-failing", json.get("run_id").asText());
        assertTrue(json.get("checkpoint").isNull(), "no checkpoint was written");
        String failure = json.get("failure").asText();
        assertTrue(Pattern.matches("the trainer failed 2 times before writing a checkpoint \\(step 2, step 1;"
                + " spiel4j\\.supervision\\.max-restarts-without-progress = 1\\); the last failure: step 1 \\(examples"
                + " \\[train\\.jsonl:\\d+, train\\.jsonl:\\d+]\\): injected failure before step 1"
                + " \\(spiel4j\\.debug\\.fail-at-steps\\)", failure), failure);
        assertTrue(Pattern.compile("^trainer failed at step 2 \\(examples \\[train\\.jsonl:\\d+,"
                + " train\\.jsonl:\\d+]\\): injected failure before step 2 .*; restart 1 of at most 1 without a new"
                + " checkpoint, in \\d+ ms$",
                Pattern.MULTILINE).matcher(r.err()).find(), r.err());
        assertTrue(r.err().contains("\ntrainer restarted from the beginning\n"), r.err());
        assertTrue(r.err().contains("\nrun FAILED: " + failure + "\n"), r.err());
        assertTrue(r.err().contains("\nspiel4j train: error: run cli-failing failed: " + failure + "\n"), r.err());
    }

    @Test
    void deadLettersListsEachUnusableRecordOnceWithItsLineReasonAndExcerpt(@TempDir Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            lines.add("{\"prompt\":\"What comes after " + i + "?\\n\",\"response\":\"" + (i + 1) + ".\"}");
        }
        lines.add(2, "{\"prompt\": \"broken");
        lines.add(5, "{\"prompt\":\"no response here\"}");
        Path data = Files.write(dir.resolve("train.jsonl"), lines, StandardCharsets.UTF_8);
        Path config = Files.writeString(dir.resolve("run.conf"), "spiel4j.device = cpu\n");
        Path runs = dir.resolve("runs");
        // 8 steps of 2 records pass over the 6 usable records almost three times: each broken one is still one letter
        Run train = run("train", "--config", config.toString(), "--model", GGUF, "--data", data.toString(),
                "--out", runs.toString(), "--run-id", "cli-dead-letters", "--steps", "8", "--batch-size", "2",
                "--seq-len", "32", "data.format=prompt-response", "eval.interval=0", "--json");
        assertEquals(0, train.code(), train::err);
        assertEquals(2, train.json().get("dead_letters").asLong(), train.out());

        JsonNode listed = run("dead-letters", "--run", "cli-dead-letters", "--runs-dir", runs.toString(), "--json")
                .json();
        assertEquals(2, listed.get("count").asLong(), listed.toString());
        JsonNode first = listed.get("dead_letters").get(0);
        JsonNode second = listed.get("dead_letters").get(1);
        assertEquals(data + ":3", first.get("source").asText(), first.toString());
        assertEquals("{\"prompt\": \"broken", first.get("excerpt").asText());
        assertEquals(data + ":6", second.get("source").asText(), second.toString());
        assertTrue(second.get("detail").asText().contains("response"), second.toString());
        Run text = run("dead-letters", "--run", "cli-dead-letters", "--runs-dir", runs.toString());
        assertEquals(0, text.code(), text.err());
        assertTrue(text.out().startsWith("2 dead letter(s) in run cli-dead-letters\n" + data + ":3: "),
                text.out());
    }

    @Test
    void sparseFineTuningRoundTripsThroughGenerateMergeComposeExportAndInspect(@TempDir Path dir) throws IOException {
        Path a = dir.resolve("a.safetensors");
        SparseFineTuning sft = handMade(hf, hf.fingerprint(), 11);
        sft.save(a);

        int[] base = greedy(HF);
        int[] tuned = greedy(HF, a.toString());
        assertFalse(Arrays.equals(base, tuned), "the hand-made deltas should change greedy decoding");

        // generate --sft == generate from the merged export
        Path merged = dir.resolve("merged");
        assertEquals(0, run("merge", "--model", HF, "--sft", a.toString(), "--out", merged.toString()).code());
        assertArrayEquals(tuned, greedy(merged.toString()));

        // A with weight 1 plus A with weight -1 is the base, through merge and through compose
        Path cancelled = dir.resolve("cancelled");
        Run m = run("merge", "--model", HF, "--sft", a.toString(), "--sft", a.toString(), "--weight", "-1",
                "--out", cancelled.toString(), "--json");
        assertEquals(sft.numDeltas(), m.json().get("num_deltas").asLong()); // the union of the same indices
        assertArrayEquals(base, greedy(cancelled.toString()));
        Path zero = dir.resolve("zero.safetensors");
        JsonNode c = run("compose", "--sft", a.toString(), "--sft", a.toString(), "--weights", "1,-1",
                "--out", zero.toString(), "--json").json();
        assertEquals(sft.numDeltas(), c.get("num_deltas").asLong());
        assertArrayEquals(base, greedy(HF, zero.toString()));
        // several --sft add up: A + A == compose(A, A) with weights 2
        Path doubled = dir.resolve("doubled.safetensors");
        run("compose", "--sft", a.toString(), "--weights", "2", "--out", doubled.toString(), "--json").json();
        assertArrayEquals(greedy(HF, a.toString(), a.toString()), greedy(HF, doubled.toString()));

        // export merged == merge; export peft is inspectable and agrees with the fine-tuning
        Path exported = dir.resolve("exported");
        JsonNode e = run("export", "--sft", a.toString(), "--model", HF, "--format", "merged",
                "--out", exported.toString(), "--json").json();
        assertTrue(e.get("files").toString().contains("model.safetensors"), e.toString());
        assertArrayEquals(tuned, greedy(exported.toString()));
        Path adapter = dir.resolve("adapter");
        run("export", "--sft", a.toString(), "--model", HF, "--format", "peft", "--out", adapter.toString(),
                "--json").json();
        // the adapter directory (or its weights file) is a fine-tuning of the base it names, for every command
        assertArrayEquals(tuned, greedy(HF, adapter.toString()));
        assertArrayEquals(tuned, greedy(HF, adapter.resolve("adapter_model.safetensors").toString()));
        // compose reads such an adapter against --model: the adapter minus the file it came from is the base
        Run noModel = run("compose", "--sft", adapter.toString(), "--out", dir.resolve("x.safetensors").toString());
        assertEquals(1, noModel.code(), noModel.err());
        assertTrue(noModel.err().contains(adapter.toString()) && noModel.err().contains("--model"), noModel.err());
        Path adapterMinusA = dir.resolve("adapter-minus-a.safetensors");
        JsonNode ca = run("compose", "--model", HF, "--sft", adapter.toString(), "--sft", a.toString(),
                "--weights", "1,-1", "--out", adapterMinusA.toString(), "--json").json();
        assertEquals(sft.numDeltas(), ca.get("num_deltas").asLong());
        assertEquals(hf.fingerprint(), ca.get("base_fingerprint").asText());
        assertArrayEquals(base, greedy(HF, adapterMinusA.toString()));
        JsonNode ia = run("inspect", adapter.toString(), "--json").json();
        assertEquals("peft-adapter", ia.get("kind").asText());
        assertEquals(sft.numDeltas(), ia.get("num_tunable_weights").asLong());
        assertEquals(sft.numDeltas(), ia.get("deltas").asLong());
        assertEquals(40, ia.get("num_deltas").get(ModuleNames.linear(0, "self_attn.q_proj")).asLong());
        assertEquals(Path.of(HF).toAbsolutePath().toString(), JSON.readTree(adapter.resolve("adapter_config.json")
                .toFile()).get("base_model_name_or_path").asText(), "where PEFT's AutoPeftModelForCausalLM finds the base");
        // the fork's default torch.save file is refused, saying how to re-save it; nothing is unpickled
        Path pickle = Files.write(dir.resolve("adapter_model.bin"), new byte[]{'P', 'K', 3, 4, 0x14, 0, 8, 8, 0, 0});
        Run refused = run("inspect", pickle.toString());
        assertEquals(1, refused.code(), refused.err());
        assertTrue(refused.err().contains("PyTorch pickle") && refused.err().contains("save_file"), refused.err());

        JsonNode is = run("inspect", a.toString(), "--json").json();
        assertEquals("sparse-fine-tuning", is.get("kind").asText());
        assertEquals(sft.numDeltas(), is.get("total").get("count").asLong());
        assertEquals(hf.fingerprint(), is.get("base_fingerprint").asText());
        Run text = run("inspect", a.toString());
        assertEquals(0, text.code());
        assertTrue(text.out().contains("hand-made") && text.out().contains("model.layers.4.mlp.down_proj"),
                text.out());
        // the service names its checkpoints delta.sft: recognised by content, not by extension
        Path renamed = Files.copy(a, a.resolveSibling("delta.sft"));
        assertEquals("sparse-fine-tuning", run("inspect", renamed.toString(), "--json").json().get("kind").asText());
    }

    @Test
    void aFineTuningOfAnotherBaseIsRefusedNamingTheFile(@TempDir Path dir) {
        Path other = dir.resolve("other.safetensors");
        handMade(hf, "sha256:0123456789abcdef", 5).save(other);
        for (String[] args : List.of(
                new String[]{"generate", "--model", HF, "--sft", other.toString(), "--prompt", "",
                        "--max-new-tokens", "4"},
                new String[]{"merge", "--model", HF, "--sft", other.toString(), "--out", dir.resolve("m").toString()},
                new String[]{"export", "--model", HF, "--sft", other.toString(), "--format", "peft",
                        "--out", dir.resolve("p").toString()})) {
            Run r = run(args);
            assertEquals(1, r.code(), args[0]);
            assertTrue(r.err().contains(other.toString()) && r.err().contains("sha256:0123456789abcdef")
                    && r.err().contains(hf.fingerprint()), r.err());
            assertFalse(r.err().contains("\tat "), "no stack trace without --verbose: " + r.err());
        }
        // the GGUF file is another base too (its q/k rows are in the other rotary layout)
        Run gguf = run("generate", "--model", GGUF, "--sft", dir.resolve("other.safetensors").toString(),
                "--prompt", "", "--max-new-tokens", "4", "--verbose");
        assertEquals(1, gguf.code());
        assertTrue(gguf.err().contains("\tat "), "--verbose shows the stack trace: " + gguf.err());
    }

    @Test
    void inspectShowsATrainingStateFileAndRefusesOtherSafetensors(@TempDir Path dir) throws IOException {
        Path state = dir.resolve("state.safetensors");
        new TrainingStateFile(Map.of("step", "12"), Map.of("adam.m", new float[]{1, 2, 3}),
                Map.of("ages", new int[]{4, 5}), Map.of()).save(state);
        JsonNode j = run("inspect", state.toString(), "--json").json();
        assertEquals("training-state", j.get("kind").asText());
        assertEquals("12", j.get("metadata").get("step").asText());
        assertEquals(2, j.get("arrays").size());

        Path plain = dir.resolve("plain.safetensors");
        SafeTensors.write(plain, List.of(new HostTensor("x", new long[]{1}, HostDType.F32,
                ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, 1f))), Map.of());
        Run other = run("inspect", plain.toString());
        assertEquals(1, other.code());
        assertTrue(other.err().contains("plain.safetensors") && other.err().contains("no spiel4j checkpoint"),
                other.err());
    }

    @Test
    void inspectShowsAModelsFingerprint() throws IOException {
        JsonNode gguf = run("inspect", GGUF, "--json").json();
        assertEquals("model", gguf.get("kind").asText());
        assertEquals(ModelLoader.load(Path.of(GGUF)).fingerprint(), gguf.get("fingerprint").asText());
        assertEquals(64, gguf.get("config").get("dim").asInt());
        assertEquals("INTERLEAVED", gguf.get("config").get("rope_layout").asText());
        assertEquals(hf.fingerprint(), run("inspect", HF, "--json").json().get("fingerprint").asText());
    }

    /** A checkpoint as the service writes it: {@code <run>/checkpoints/step-NNNNNN/{delta.sft, state.bin}}. */
    private static Path checkpoint(Path runDir, int step, SparseFineTuning sft) throws IOException {
        Path dir = Files.createDirectories(new CheckpointStore(runDir, 0).dir().resolve(CheckpointStore.idOf(step)));
        sft.save(dir.resolve(CheckpointStore.DELTA_FILE));
        new TrainingStateFile(Map.of("step", Integer.toString(step), "method", sft.method()),
                Map.of("values", new float[]{1, 2}), Map.of(), Map.of()).save(dir.resolve(CheckpointStore.STATE_FILE));
        return dir;
    }

    private static JsonNode scoreWith(String sft) throws IOException {
        return run("score", "--model", HF, "--sft", sft, "--data",
                SharedAssets.file("data/tinystories_valid_head.txt").toString(), "--seq-len", "64",
                "--max-chars", "3000", "--max-chunks", "3", "--json").json();
    }

    @Test
    void aCheckpointDirectoryStandsForItsDeltaFileInEveryCommand(@TempDir Path dir) throws IOException {
        Path run = dir.resolve("run");
        SparseFineTuning older = handMade(hf, hf.fingerprint(), 11);
        SparseFineTuning newer = handMade(hf, hf.fingerprint(), 12);
        Path step10 = checkpoint(run, 10, older);
        Path step20 = checkpoint(run, 20, newer);
        String file10 = step10.resolve(CheckpointStore.DELTA_FILE).toString();
        String file20 = step20.resolve(CheckpointStore.DELTA_FILE).toString();

        int[] fromFile = greedy(HF, file10);
        assertFalse(Arrays.equals(greedy(HF), fromFile), "the hand-made deltas should change greedy decoding");
        assertArrayEquals(fromFile, greedy(HF, step10.toString()));
        assertEquals(scoreWith(file10).get("mean_nll").asDouble(),
                scoreWith(step10.toString()).get("mean_nll").asDouble(), 0.0);

        // merge, compose and export take it too
        Path merged = dir.resolve("merged");
        assertEquals(older.numDeltas(), run("merge", "--model", HF, "--sft", step10.toString(),
                "--out", merged.toString(), "--json").json().get("num_deltas").asLong());
        assertArrayEquals(fromFile, greedy(merged.toString()));
        Path doubled = dir.resolve("doubled.safetensors");
        run("compose", "--sft", step10.toString(), "--weights", "2", "--out", doubled.toString(), "--json").json();
        assertArrayEquals(greedy(HF, file10, file10), greedy(HF, doubled.toString()));
        Path adapter = dir.resolve("adapter");
        run("export", "--sft", step10.toString(), "--model", HF, "--format", "peft", "--out", adapter.toString(),
                "--json").json();
        assertEquals(older.numDeltas(), run("inspect", adapter.toString(), "--json").json()
                .get("num_tunable_weights").asLong());

        // inspect shows the checkpoint's fine-tuning
        JsonNode inspected = run("inspect", step10.toString(), "--json").json();
        assertEquals("sparse-fine-tuning", inspected.get("kind").asText());
        assertEquals(older.numDeltas(), inspected.get("total").get("count").asLong());
        assertEquals(older.hyperparameters().get("seed"), inspected.get("hyperparameters").get("seed").asText());

        // the run directory and its checkpoints folder mean the newest checkpoint, and say so on stderr
        int[] newest = greedy(HF, file20);
        assertFalse(Arrays.equals(fromFile, newest), "the two checkpoints should decode differently");
        for (Path runOrFolder : List.of(run, run.resolve("checkpoints"))) {
            Run r = run("generate", "--model", HF, "--sft", runOrFolder.toString(), "--prompt", "",
                    "--max-new-tokens", "40", "--greedy", "--json");
            assertArrayEquals(newest, ids(r.json()));
            assertTrue(r.err().contains(runOrFolder + " holds 2 checkpoint(s): using the newest, " + step20),
                    r.err());
            Run i = run("inspect", runOrFolder.toString(), "--json");
            assertEquals(newer.hyperparameters().get("seed"),
                    i.json().get("hyperparameters").get("seed").asText());
            assertTrue(i.err().contains("using the newest, " + step20), i.err());
        }
    }

    @Test
    void directoriesThatAreNotCheckpointsAreRefusedNamingThem(@TempDir Path dir) throws IOException {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        Path notes = Files.createDirectories(dir.resolve("notes"));
        Files.writeString(notes.resolve("readme.txt"), "not a checkpoint");
        String data = SharedAssets.file("data/tinystories_valid_head.txt").toString();
        for (Path d : List.of(empty, notes)) {
            String expected = "expected a sparse fine-tuning file, a checkpoint directory containing delta.sft";
            for (String[] args : List.of(
                    new String[]{"generate", "--model", HF, "--sft", d.toString(), "--prompt", "",
                            "--max-new-tokens", "4"},
                    new String[]{"score", "--model", HF, "--sft", d.toString(), "--data", data, "--seq-len", "8"},
                    new String[]{"merge", "--model", HF, "--sft", d.toString(), "--out", dir.resolve("m").toString()},
                    new String[]{"compose", "--sft", d.toString(), "--out", dir.resolve("c").toString()},
                    new String[]{"export", "--model", HF, "--sft", d.toString(), "--format", "peft",
                            "--out", dir.resolve("p").toString()})) {
                Run r = run(args);
                assertEquals(2, r.code(), args[0] + ": " + r.err());
                assertTrue(r.err().contains("--sft: " + d + " is " + (d == empty ? "an empty directory"
                        : "a directory without delta.sft")) && r.err().contains(expected), r.err());
            }
        }
        assertFalse(Files.exists(dir.resolve("m")) || Files.exists(dir.resolve("c")) || Files.exists(dir.resolve("p")),
                "nothing written");
        Run inspectEmpty = run("inspect", empty.toString());
        assertEquals(2, inspectEmpty.code(), inspectEmpty.err());
        assertTrue(inspectEmpty.err().contains(empty + " is a directory without delta.sft (a checkpoint),"
                + " adapter_config.json (an exported adapter) or config.json (a Hugging Face model)"),
                inspectEmpty.err());

        // an adapter's indices are read against a base, which compose has none of; a run directory needs a checkpoint
        Path adapter = dir.resolve("adapter");
        Path sft = dir.resolve("a.safetensors");
        handMade(hf, hf.fingerprint(), 11).save(sft);
        run("export", "--sft", sft.toString(), "--model", HF, "--format", "peft", "--out", adapter.toString(),
                "--json").json();
        Run fromAdapter = run("compose", "--sft", adapter.toString(), "--out", dir.resolve("c").toString());
        assertEquals(1, fromAdapter.code());
        assertTrue(fromAdapter.err().contains("is an SFT adapter in the released implementation's layout")
                && fromAdapter.err().contains("--model"), fromAdapter.err());
        Path fresh = Files.createDirectories(dir.resolve("fresh-run").resolve("checkpoints"));
        Run noCheckpoint = run("compose", "--sft", fresh.getParent().toString(), "--out", dir.resolve("c").toString());
        assertEquals(2, noCheckpoint.code());
        assertTrue(noCheckpoint.err().contains(fresh.getParent() + " is a run directory without checkpoints yet"),
                noCheckpoint.err());
        Run inspectFresh = run("inspect", fresh.getParent().toString());
        assertEquals(2, inspectFresh.code());
        assertTrue(inspectFresh.err().contains("without checkpoints yet"), inspectFresh.err());
    }

    @Test
    void aCheckpointOfAMethodThatIsNotSparseIsRefusedSayingWhy(@TempDir Path dir) throws IOException {
        Path step = checkpoint(dir.resolve("run"), 30,
                new SparseFineTuning(hf.fingerprint(), "lora", Map.of("lr", "0.002"), List.of()));
        Path deltaFile = step.resolve(CheckpointStore.DELTA_FILE);
        String why = step + " is a checkpoint of a lora run: its fine-tuning is not sparse";
        for (String sft : List.of(step.toString(), deltaFile.toString())) {
            Run g = run("generate", "--model", HF, "--sft", sft, "--prompt", "", "--max-new-tokens", "4");
            assertEquals(1, g.code(), g.err());
            assertTrue(g.err().contains(why) && g.err().contains("state.bin"), g.err());
            Run c = run("compose", "--sft", sft, "--out", dir.resolve("c").toString());
            assertEquals(1, c.code(), c.err());
            assertTrue(c.err().contains(why), c.err());
        }
        assertFalse(Files.exists(dir.resolve("c")), "nothing composed");
        // inspect still shows what the file holds, and says why it holds no deltas
        Run i = run("inspect", step.toString(), "--json");
        assertEquals(0, i.json().get("total").get("count").asLong());
        assertEquals("lora", i.json().get("method").asText());
        assertTrue(i.err().contains("warning: " + why), i.err());
        // a fine-tuning without deltas that is no checkpoint is refused too
        Path empty = dir.resolve("empty.safetensors");
        new SparseFineTuning(hf.fingerprint(), "spiel-ag", Map.of(), List.of()).save(empty);
        Run e = run("score", "--model", HF, "--sft", empty.toString(), "--data",
                SharedAssets.file("data/tinystories_valid_head.txt").toString(), "--seq-len", "8");
        assertEquals(1, e.code(), e.err());
        assertTrue(e.err().contains(empty + " holds no deltas (method spiel-ag): there is nothing to apply"), e.err());
    }
}
