package dev.spiel4j.checkpoint;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.io.AtomicFiles;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.io.SafeTensors;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.RopeLayout;
import dev.spiel4j.tokenizer.SentencePieceBpe;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.IntStream;

/**
 * Writes a sparse fine-tuning for Python users, always in the Hugging Face weight layout: when the base came from a
 * GGUF file (interleaved rotary pairs), q_proj/k_proj rows are permuted to the rotate-half order that Hugging Face
 * checkpoints use ({@link #rotateHalfRow}), exactly as {@code convert_llama_weights_to_hf.py} permutes the weights.
 *
 * <h2>The released implementation's adapter layout ({@link #writePeftAdapter})</h2>
 * {@code adapter_model.safetensors} holds, per targeted linear module (PEFT state-dict keys, hence the
 * {@code base_model.model.} prefix a {@code PeftModel} adds):
 * {@code base_model.model.<module>.sft_delta.indices} (I32, flat row-major, sorted ascending as the fork's
 * {@code torch_scatter.segment_coo} requires) and {@code base_model.model.<module>.sft_delta.values} (F32).
 * {@code adapter_config.json} holds the fields of the fork's {@code SftConfig}:
 * <ul>
 *   <li>{@code peft_type} "SFT", {@code task_type} "CAUSAL_LM", {@code inference_mode} true</li>
 *   <li>{@code base_model_name_or_path}: where the base came from, which PEFT's {@code AutoPeftModelForCausalLM}
 *       loads the base from</li>
 *   <li>{@code num_deltas}: module path (e.g. {@code model.layers.0.self_attn.q_proj}) to its number of deltas;
 *       the fork sizes each module's delta from this map when loading</li>
 *   <li>{@code target_modules}: the short names targeted, e.g. {@code ["q_proj", ...]}</li>
 *   <li>{@code num_tunable_weights}: the total number of deltas; {@code density}: that over all model parameters</li>
 *   <li>{@code dtype} "float32"</li>
 *   <li>{@code spiel4j}: provenance the fork ignores: base fingerprint, method, hyperparameters</li>
 * </ul>
 */
public final class SftExport {
    public static final String ADAPTER_WEIGHTS = "adapter_model.safetensors";
    public static final String ADAPTER_CONFIG = "adapter_config.json";
    private static final String PEFT_PREFIX = "base_model.model.";
    private static final List<String> TOKENIZER_FILES =
            List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model");

    private SftExport() {
    }

    /**
     * Writes {@link #ADAPTER_WEIGHTS} and {@link #ADAPTER_CONFIG} into {@code dir} (created if needed).
     *
     * @param baseModelNameOrPath the base's Hub id or path, as {@code base_model_name_or_path}
     */
    public static void writePeftAdapter(SparseFineTuning sft, LlamaConfig base, String baseModelNameOrPath, Path dir) {
        createDirectories(dir);
        List<HostTensor> tensors = new ArrayList<>();
        ObjectNode numDeltas = JsonFiles.MAPPER.createObjectNode();
        Set<String> targets = new LinkedHashSet<>();
        for (DeltaTensor d : sft.deltas()) {
            long numel = (long) d.rows() * d.cols();
            if (numel > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(d.module() + " has " + numel + " elements; the released layout"
                        + " stores int32 indices, which cannot address it");
            }
            long[] idx = d.indices();
            float[] val = d.values();
            if (needsPermutation(base, d.module())) {
                for (int j = 0; j < idx.length; j++) {
                    long row = idx[j] / d.cols();
                    idx[j] = rotateHalfRow((int) row, base.headDim()) * (long) d.cols() + idx[j] % d.cols();
                }
            }
            int[] order = IntStream.range(0, idx.length).boxed()
                    .sorted(Comparator.comparingLong(j -> idx[j])).mapToInt(Integer::intValue).toArray();
            ByteBuffer ib = ByteBuffer.allocate(4 * idx.length).order(ByteOrder.LITTLE_ENDIAN);
            float[] sortedValues = new float[val.length];
            for (int j = 0; j < order.length; j++) {
                ib.putInt((int) idx[order[j]]);
                sortedValues[j] = val[order[j]];
            }
            String key = PEFT_PREFIX + d.module() + ".sft_delta.";
            tensors.add(new HostTensor(key + "indices", new long[]{idx.length}, HostDType.I32, ib.flip()));
            tensors.add(SparseFineTuningFile.floatTensor(key + "values", sortedValues));
            numDeltas.put(d.module(), d.size());
            targets.add(d.module().substring(d.module().lastIndexOf('.') + 1));
        }
        SafeTensors.write(dir.resolve(ADAPTER_WEIGHTS), tensors, Map.of("format", "pt"));

        ObjectNode config = JsonFiles.MAPPER.createObjectNode();
        config.put("peft_type", "SFT");
        config.put("base_model_name_or_path", baseModelNameOrPath);
        config.put("task_type", "CAUSAL_LM");
        config.put("inference_mode", true);
        config.set("num_deltas", numDeltas);
        targets.forEach(config.putArray("target_modules")::add);
        config.put("num_tunable_weights", sft.numDeltas());
        config.put("density", (double) sft.numDeltas() / parameterCount(base));
        config.put("dtype", "float32");
        ObjectNode provenance = config.putObject("spiel4j");
        provenance.put("base_fingerprint", sft.baseFingerprint());
        provenance.put("method", sft.method());
        provenance.set("hyperparameters", JsonFiles.MAPPER.valueToTree(sft.hyperparameters()));
        AtomicFiles.writeString(dir.resolve(ADAPTER_CONFIG), config.toPrettyString());
    }

    /**
     * Writes the base weights with the deltas added as a float32 Hugging Face checkpoint ({@code model.safetensors}
     * and {@code config.json}) into {@code dir}, with a tokenizer: the tokenizer files are copied when the base is a
     * Hugging Face directory; a base file's SentencePiece tokenizer (GGUF metadata) is written as
     * {@code tokenizer.model} plus a {@code tokenizer_config.json} naming the special tokens. Refuses a fine-tuning
     * of another base, and a base whose tokenizer can be neither copied nor written.
     */
    public static void writeMergedModel(FineTuning tuning, LoadedModel base, Path dir) {
        boolean copyTokenizer = Files.isDirectory(base.source());
        if (!copyTokenizer && !(base.tokenizer() instanceof SentencePieceBpe)) {
            throw new IllegalArgumentException(base.source() + ": its " + base.tokenizer().getClass().getSimpleName()
                    + " cannot be exported; only a SentencePiece tokenizer or a Hugging Face directory's files can");
        }
        createDirectories(dir);
        LlamaConfig c = base.config();
        tuning.requireFits(base.tensors(), base.fingerprint());
        // One tensor in memory at a time: each is merged (and permuted) only when the writer reaches it.
        List<SafeTensors.PendingTensor> pending = new ArrayList<>();
        for (HostTensor t : new TreeMap<>(base.tensors()).values()) {
            boolean permute = needsPermutation(c, t.name().replaceFirst("\\.weight$", ""));
            pending.add(new SafeTensors.PendingTensor(t.name(), HostDType.F32, t.shape(), () -> {
                float[] w = tuning.mergedOnHost(t);
                float[] out = permute ? permuteRows(w, t.shape(), c.headDim()) : w;
                return SparseFineTuningFile.floatTensor(t.name(), t.shape(), out).data();
            }));
        }
        SafeTensors.writePending(dir.resolve("model.safetensors"), pending, Map.of("format", "pt"));
        AtomicFiles.writeString(dir.resolve("config.json"), hfConfig(c, base).toPrettyString());
        if (!copyTokenizer) {
            writeSentencePieceTokenizer((SentencePieceBpe) base.tokenizer(), c, dir);
        } else {
            for (String f : TOKENIZER_FILES) {
                Path from = base.source().resolve(f);
                if (Files.isRegularFile(from)) {
                    try {
                        Files.copy(from, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
                    } catch (IOException e) {
                        throw new UncheckedIOException("cannot copy " + from + " to " + dir, e);
                    }
                }
            }
        }
    }

    /**
     * {@code tokenizer.model}, the same as {@code tokenizer.json} (which {@code transformers} loads without
     * SentencePiece or protobuf) and the {@code tokenizer_config.json} that {@code transformers}' LlamaTokenizer
     * reads with them (BOS added, EOS not, as LLaMA's tokenizer does).
     */
    private static void writeSentencePieceTokenizer(SentencePieceBpe tokenizer, LlamaConfig c, Path dir) {
        tokenizer.writeModelFile(dir.resolve("tokenizer.model"));
        tokenizer.writeTokenizerJson(dir.resolve("tokenizer.json"));
        ObjectNode n = JsonFiles.MAPPER.createObjectNode();
        n.put("tokenizer_class", "LlamaTokenizer");
        n.put("bos_token", tokenizer.piece(tokenizer.bosId()));
        n.put("eos_token", tokenizer.piece(tokenizer.eosId()));
        n.put("unk_token", tokenizer.piece(tokenizer.unkId()));
        n.put("add_bos_token", true);
        n.put("add_eos_token", false);
        n.put("legacy", false);
        n.put("clean_up_tokenization_spaces", false);
        n.put("model_max_length", c.contextLength());
        AtomicFiles.writeString(dir.resolve("tokenizer_config.json"), n.toPrettyString());
    }

    /**
     * The Hugging Face (rotate-half) row of an interleaved-layout q/k row: within each head, interleaved row
     * {@code 2i + a} (pair i, member a) becomes {@code a * headDim/2 + i}.
     */
    public static int rotateHalfRow(int row, int headDim) {
        int head = row / headDim;
        int j = row % headDim;
        return head * headDim + (j % 2) * (headDim / 2) + j / 2;
    }

    private static boolean needsPermutation(LlamaConfig c, String module) {
        return c.ropeLayout() == RopeLayout.INTERLEAVED
                && (module.endsWith(".self_attn.q_proj") || module.endsWith(".self_attn.k_proj"));
    }

    private static float[] permuteRows(float[] in, long[] shape, int headDim) {
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        float[] out = new float[in.length];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(in, r * cols, out, rotateHalfRow(r, headDim) * cols, cols);
        }
        return out;
    }

    private static long parameterCount(LlamaConfig c) {
        long d = c.dim();
        long q = (long) c.heads() * c.headDim();
        long perLayer = 2 * d + q * d + 2L * c.kvDim() * d + d * q + 3L * c.ffnDim() * d;
        return (long) c.vocabSize() * d * (c.tiedEmbeddings() ? 1 : 2) + c.layers() * perLayer + d;
    }

    private static ObjectNode hfConfig(LlamaConfig c, LoadedModel base) {
        ObjectNode n = JsonFiles.MAPPER.createObjectNode();
        n.putArray("architectures").add("LlamaForCausalLM");
        n.put("model_type", "llama");
        n.put("hidden_size", c.dim());
        n.put("intermediate_size", c.ffnDim());
        n.put("num_hidden_layers", c.layers());
        n.put("num_attention_heads", c.heads());
        n.put("num_key_value_heads", c.kvHeads());
        n.put("head_dim", c.headDim());
        n.put("vocab_size", c.vocabSize());
        n.put("max_position_embeddings", c.contextLength());
        // Float.toString keeps the decimal the user knows (1e-5, not 9.99999974737875e-06).
        n.put("rms_norm_eps", Double.parseDouble(Float.toString(c.normEps())));
        n.put("rope_theta", Double.parseDouble(Float.toString(c.ropeTheta())));
        n.put("tie_word_embeddings", c.tiedEmbeddings());
        n.put("hidden_act", "silu");
        n.put("attention_bias", false);
        n.put("mlp_bias", false);
        n.put("bos_token_id", base.tokenizer().bosId());
        n.put("eos_token_id", base.tokenizer().eosId());
        n.put("torch_dtype", "float32");
        return n;
    }

    private static void createDirectories(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir, e);
        }
    }
}
