package dev.spiel4j.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.loader.GgufReader;
import dev.spiel4j.loader.HfCheckpoint;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.ModelFingerprint;
import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.model.GenerationConfig;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.model.RopeLayout;
import dev.spiel4j.tokenizer.HfTokenizer;
import dev.spiel4j.tokenizer.SentencePieceBpe;
import dev.spiel4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SftExportTest {
    @TempDir
    Path dir;

    /** The exported adapter's (index -> value) pairs per module, checking the layout on the way. */
    static Map<String, Map<Long, Float>> readAdapter(Path adapterDir) {
        SafeTensors.Contents c = SafeTensors.read(adapterDir.resolve(SftExport.ADAPTER_WEIGHTS));
        Map<String, Map<Long, Float>> out = new LinkedHashMap<>();
        for (String name : c.tensors().keySet()) {
            assertTrue(name.startsWith("base_model.model.model.layers."), name);
            if (!name.endsWith(".sft_delta.indices")) {
                assertTrue(name.endsWith(".sft_delta.values"), name);
                continue;
            }
            String module = name.substring("base_model.model.".length(), name.length() - ".sft_delta.indices".length());
            HostTensor idx = c.tensors().get(name);
            HostTensor val = c.require(name.replace(".indices", ".values"));
            assertEquals(HostDType.I32, idx.dtype());
            assertEquals(HostDType.F32, val.dtype());
            long[] indices = SparseFineTuningFile.longs(idx);
            float[] values = val.toFloats();
            Map<Long, Float> pairs = new HashMap<>();
            for (int j = 0; j < indices.length; j++) {
                assertTrue(j == 0 || indices[j] > indices[j - 1], "indices sorted ascending, as segment_coo needs");
                pairs.put(indices[j], values[j]);
            }
            out.put(module, pairs);
        }
        return out;
    }

    @Test
    void writesTheReleasedAdapterLayout() throws IOException {
        LoadedModel model = Fixtures.model();
        SparseFineTuning sft = Fixtures.random(model, 64, 1e-2f, 21, "spiel-ag");
        Path out = dir.resolve("adapter");
        SftExport.writePeftAdapter(sft, model.config(), model.source().toString(), out);

        Map<String, Map<Long, Float>> adapter = readAdapter(out);
        assertEquals(sft.deltas().size(), adapter.size());
        for (DeltaTensor d : sft.deltas()) {
            Map<Long, Float> pairs = adapter.get(d.module());
            long[] idx = d.indices();
            float[] val = d.values();
            assertEquals(idx.length, pairs.size());
            for (int j = 0; j < idx.length; j++) {
                assertEquals(val[j], pairs.get(idx[j]), 0f, d.module());
            }
        }
        JsonNode config = JsonFiles.readObject(out.resolve(SftExport.ADAPTER_CONFIG));
        assertEquals("SFT", config.path("peft_type").asText());
        assertEquals(model.source().toString(), config.path("base_model_name_or_path").asText());
        assertEquals(64, config.path("num_deltas").path("model.layers.3.mlp.down_proj").asInt());
        assertEquals(35, config.path("num_deltas").size());
        assertEquals(List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                JsonFiles.MAPPER.convertValue(config.path("target_modules"), List.class));
        long params = model.tensors().values().stream().mapToLong(HostTensor::numel).sum();
        assertEquals((double) sft.numDeltas() / params, config.path("density").asDouble(), 1e-15);
        assertEquals(sft.baseFingerprint(), config.path("spiel4j").path("base_fingerprint").asText());
    }

    @Test
    void writesMergedWeightsThatLoadBack() {
        LoadedModel model = Fixtures.model();
        SparseFineTuning sft = Fixtures.random(model, 100, 0.1f, 22, "spiel-ma");
        Path out = dir.resolve("merged");
        SftExport.writeMergedModel(sft, model, out);
        LoadedModel merged = HfCheckpoint.load(out);
        assertEquals(model.config(), merged.config());
        Map<String, float[]> expected = SparseMergeTest.denseAdd(model, sft);
        for (var e : model.tensors().entrySet()) {
            float[] want = expected.getOrDefault(e.getKey(), e.getValue().toFloats());
            assertArrayEquals(want, merged.tensors().get(e.getKey()).toFloats(), 0f, e.getKey());
        }
        assertFalse(merged.fingerprint().equals(model.fingerprint()));
        assertArrayEquals(model.tokenizer().encode("Once upon a time"), merged.tokenizer().encode("Once upon a time"));
    }

    /**
     * A GGUF-layout base (interleaved rotary pairs): q/k read straight from stories260K.gguf at the offsets in the
     * golden dump, everything else from the HF copy (identical there). Exports must come out in the HF layout, which
     * the real HF conversion of the same model pins down.
     */
    @Test
    void exportsFromAGgufLayoutBaseInTheHfLayout() throws IOException {
        LoadedModel hf = Fixtures.model();
        Map<String, HostTensor> tensors = new LinkedHashMap<>(hf.tensors());
        Map<String, Long> offsets = ggufOffsets();
        boolean differs = false;
        try (FileChannel ch = FileChannel.open(SharedAssets.file("model/stories260K.gguf"))) {
            for (int l = 0; l < hf.config().layers(); l++) {
                for (String[] m : new String[][]{{"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"}}) {
                    String name = ModuleNames.linear(l, m[0]) + ".weight";
                    long[] shape = hf.tensors().get(name).shape();
                    ByteBuffer b = ByteBuffer.allocate((int) (shape[0] * shape[1] * 4)).order(ByteOrder.LITTLE_ENDIAN);
                    ch.read(b, offsets.get("blk." + l + "." + m[1] + ".weight"));
                    HostTensor gguf = new HostTensor(name, shape, HostDType.F32, b.flip());
                    differs |= !java.util.Arrays.equals(gguf.toFloats(), hf.tensors().get(name).toFloats());
                    tensors.put(name, gguf);
                }
            }
        }
        assertTrue(differs, "the GGUF q/k rows must differ from the HF ones for this test to mean anything");
        LlamaConfig c = hf.config();
        LlamaConfig interleaved = new LlamaConfig(c.dim(), c.layers(), c.heads(), c.kvHeads(), c.ffnDim(),
                c.vocabSize(), c.contextLength(), c.normEps(), c.ropeTheta(), RopeLayout.INTERLEAVED, true);
        // a GGUF base carries its SentencePiece tokenizer (which the merged export writes as tokenizer.model)
        LoadedModel gguf = new LoadedModel(dir.resolve("stories260K.gguf"), interleaved, tensors,
                SentencePieceBpe.fromModelFile(SharedAssets.file("model/tok512.model")), ModelFingerprint.of(tensors));
        SparseFineTuning sft = Fixtures.random(gguf, 50, 0.1f, 23, "spiel-ag");

        // Merged: the permuted GGUF weights plus deltas must equal the HF weights plus the adapter export's deltas.
        SftExport.writeMergedModel(sft, gguf, dir.resolve("merged"));
        SftExport.writePeftAdapter(sft, interleaved, gguf.source().toString(), dir.resolve("adapter"));
        Map<String, Map<Long, Float>> adapter = readAdapter(dir.resolve("adapter"));
        SafeTensors.Contents merged = SafeTensors.read(dir.resolve("merged/model.safetensors"));
        assertEquals(hf.tensors().keySet(), merged.tensors().keySet());
        assertEquals(hf.config(), HfCheckpoint.parseConfig(dir.resolve("merged/config.json")));
        for (var e : hf.tensors().entrySet()) {
            float[] want = e.getValue().toFloats();
            String module = e.getKey().replaceFirst("\\.weight$", "");
            for (var pair : adapter.getOrDefault(module, Map.of()).entrySet()) {
                want[Math.toIntExact(pair.getKey())] += pair.getValue();
            }
            assertArrayEquals(want, merged.require(e.getKey()).toFloats(), 0f, e.getKey());
        }
        assertEquals(0, SftExport.rotateHalfRow(0, 8));
        assertEquals(4, SftExport.rotateHalfRow(1, 8));
        assertEquals(8 + 3 + 4, SftExport.rotateHalfRow(8 + 7, 8));
        for (int row = 0; row < 24; row++) {
            assertEquals(row, SftImport.interleavedRow(SftExport.rotateHalfRow(row, 8), 8));
        }

        // Imported back onto the GGUF base, the adapter is the fine-tuning it was exported from; another base
        // (the HF copy: other bytes, another fingerprint) refuses it, as spiel4j wrote down which base it fits.
        SparseFineTuning back = SftImport.readPeftAdapter(dir.resolve("adapter"), gguf);
        assertEquals(sft.baseFingerprint(), back.baseFingerprint());
        assertEquals(sft.method(), back.method());
        assertSameDeltas(sft, back);
        String other = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> SftImport.readPeftAdapter(dir.resolve("adapter"), hf)).getMessage();
        assertTrue(other.contains(gguf.fingerprint()) && other.contains(hf.fingerprint()), other);
    }

    /**
     * The fork saves its adapters with indices in the order its reselections left them, without spiel4j's
     * provenance, its values in the training dtype: read as they are, sorted, on the base they are read for; what
     * cannot be one (a module or index the base does not have, two deltas at one index, another PEFT type) is refused
     * naming the file and the module.
     */
    @Test
    void importsAForkAdapterInAnyOrderAndRefusesOneThatDoesNotFitTheBase() throws IOException {
        LoadedModel model = Fixtures.model();
        String q = ModuleNames.linear(1, "self_attn.q_proj");
        String down = ModuleNames.linear(4, "mlp.down_proj");
        Path fork = dir.resolve("fork");
        writeForkAdapter(fork, Map.of(q, new int[]{90, 3, 47}, down, new int[]{5, 0}),
                Map.of(q, new float[]{0.5f, -0.25f, 2f}, down, new float[]{1.5f, -3f}), "SFT");
        SparseFineTuning sft = SftImport.readPeftAdapter(fork, model);
        assertEquals(model.fingerprint(), sft.baseFingerprint());
        assertEquals(List.of(q, down), sft.deltas().stream().map(DeltaTensor::module).toList());
        assertArrayEquals(new long[]{3, 47, 90}, sft.deltas().get(0).indices());
        assertArrayEquals(new float[]{-0.25f, 2f, 0.5f}, sft.deltas().get(0).values());
        assertArrayEquals(new long[]{0, 5}, sft.deltas().get(1).indices());
        assertArrayEquals(new float[]{-3f, 1.5f}, sft.deltas().get(1).values());
        assertSameDeltas(sft, SftImport.readPeftAdapter(fork.resolve(SftExport.ADAPTER_WEIGHTS), model));

        assertRefused(model, Map.of(q, new int[]{7, 7}), "index 7 holds two deltas", "SFT");
        assertRefused(model, Map.of("model.layers.9.self_attn.q_proj", new int[]{1}), "no weight matrix", "SFT");
        assertRefused(model, Map.of(q, new int[]{Integer.MAX_VALUE}), "outside its", "SFT");
        assertRefused(model, Map.of(q, new int[]{1}), "peft_type is LORA", "LORA");
    }

    /**
     * A GGUF base has no tokenizer files to copy: the export writes its SentencePiece model and the same as
     * tokenizer.json, and the directory loads through {@link ModelLoader} (which reads tokenizer.json with the
     * tokenizers library) into a model that encodes as the base does and continues a prompt exactly as the base with
     * the sft merged.
     */
    @Test
    void mergedExportOfAGgufBaseCarriesItsTokenizerAndGeneratesLikeTheBaseWithTheSft() {
        LoadedModel gguf = GgufReader.load(SharedAssets.file("model/stories260K.gguf"));
        SparseFineTuning sft = Fixtures.random(gguf, 50, 0.1f, 31, "spiel-ag");
        Path out = dir.resolve("merged-gguf");
        SftExport.writeMergedModel(sft, gguf, out);
        assertTrue(Files.isRegularFile(out.resolve("tokenizer.model")));
        assertTrue(Files.isRegularFile(out.resolve("tokenizer.json")));
        JsonNode tokenizerConfig = JsonFiles.readObject(out.resolve("tokenizer_config.json"));
        assertEquals("<s>", tokenizerConfig.path("bos_token").asText());
        assertEquals("</s>", tokenizerConfig.path("eos_token").asText());

        LoadedModel merged = ModelLoader.load(out);
        Tokenizer tokenizer = merged.tokenizer();
        assertInstanceOf(HfTokenizer.class, tokenizer);
        assertEquals(List.of(gguf.tokenizer().bosId(), gguf.tokenizer().eosId(), gguf.tokenizer().vocabSize()),
                List.of(tokenizer.bosId(), tokenizer.eosId(), tokenizer.vocabSize()));
        String text = "Once upon a time, there was a  little girl.\nShe was caf\u00e9 \ud83d\ude00";
        assertArrayEquals(gguf.tokenizer().encode(text), tokenizer.encode(text));

        int[] prompt = IntStream.concat(IntStream.of(tokenizer.bosId()),
                IntStream.of(tokenizer.encode("Once upon a time"))).toArray();
        GenerationConfig greedy = GenerationConfig.greedy(40);
        try (NDManager root = NDManager.newBaseManager();
             LlamaModel base = LlamaModel.create(gguf, root, DataType.FLOAT32);
             LlamaModel exported = LlamaModel.create(merged, root, DataType.FLOAT32)) {
            int[] plain = base.generate(prompt, tokenizer.eosId(), greedy, LinearLayers.DENSE);
            SparseMerge.merge(sft, base.weights());
            int[] withSft = base.generate(prompt, tokenizer.eosId(), greedy, LinearLayers.DENSE);
            assertFalse(Arrays.equals(plain, withSft), "the sft must change the continuation for this to mean anything");
            assertArrayEquals(withSft, exported.generate(prompt, tokenizer.eosId(), greedy, LinearLayers.DENSE));
        }
    }

    /** Absolute file offsets of the GGUF tensors, from golden/stories260K.gguf_dump.txt. */
    static Map<String, Long> ggufOffsets() throws IOException {
        List<String> lines = Files.readAllLines(SharedAssets.file("golden/stories260K.gguf_dump.txt"));
        Matcher start = Pattern.compile("data_start=(\\d+)").matcher(String.join("\n", lines));
        assertTrue(start.find());
        long dataStart = Long.parseLong(start.group(1));
        Pattern tensor = Pattern.compile("^\\s*tensor (\\S+)\\s.* type=F32 off=(\\d+)$");
        Map<String, Long> out = new HashMap<>();
        for (String l : lines) {
            Matcher m = tensor.matcher(l);
            if (m.matches()) {
                out.put(m.group(1), dataStart + Long.parseLong(m.group(2)));
            }
        }
        return out;
    }

    private void assertRefused(LoadedModel model, Map<String, int[]> indices, String reason, String peftType)
            throws IOException {
        Path bad = Files.createTempDirectory(dir, "bad");
        Map<String, float[]> values = new LinkedHashMap<>();
        indices.forEach((m, idx) -> values.put(m, new float[idx.length]));
        writeForkAdapter(bad, indices, values, peftType);
        String message = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class,
                () -> SftImport.readPeftAdapter(bad, model)).getMessage();
        assertTrue(message.contains(reason) && message.contains(bad.toString()), message);
    }

    /** An adapter as the fork saves one: int32 indices in the given order, bfloat16 values, its own config only. */
    private static void writeForkAdapter(Path out, Map<String, int[]> indices, Map<String, float[]> values,
                                         String peftType) throws IOException {
        Files.createDirectories(out);
        List<HostTensor> tensors = new java.util.ArrayList<>();
        for (String module : indices.keySet()) {
            int[] idx = indices.get(module);
            float[] val = values.get(module);
            ByteBuffer ib = ByteBuffer.allocate(4 * idx.length).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer vb = ByteBuffer.allocate(2 * val.length).order(ByteOrder.LITTLE_ENDIAN);
            for (int j = 0; j < idx.length; j++) {
                ib.putInt(idx[j]);
                vb.putShort((short) (Float.floatToIntBits(val[j]) >>> 16)); // exact: the values fit in bfloat16
            }
            String key = "base_model.model." + module + ".sft_delta.";
            tensors.add(new HostTensor(key + "indices", new long[]{idx.length}, HostDType.I32, ib.flip()));
            tensors.add(new HostTensor(key + "values", new long[]{val.length}, HostDType.BF16, vb.flip()));
        }
        SafeTensors.write(out.resolve(SftExport.ADAPTER_WEIGHTS), tensors, Map.of("format", "pt"));
        Files.writeString(out.resolve(SftExport.ADAPTER_CONFIG), "{\"peft_type\": \"" + peftType
                + "\", \"base_model_name_or_path\": \"stories260K\", \"num_tunable_weights\": 3000}");
    }

    /** The same (index, value) pairs per module, in whatever order each holds them. */
    private static void assertSameDeltas(SparseFineTuning expected, SparseFineTuning actual) {
        assertEquals(pairs(expected), pairs(actual));
    }

    private static Map<String, Map<Long, Float>> pairs(SparseFineTuning sft) {
        Map<String, Map<Long, Float>> out = new java.util.TreeMap<>();
        for (DeltaTensor d : sft.deltas()) {
            Map<Long, Float> pairs = new java.util.TreeMap<>();
            long[] idx = d.indices();
            float[] val = d.values();
            for (int j = 0; j < idx.length; j++) {
                pairs.put(idx[j], val[j]);
            }
            out.put(d.module(), pairs);
        }
        return out;
    }
}
