package dev.spiel4j.bench;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.type.LogicalType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.RopeLayout;
import dev.spiel4j.peft.registry.MethodRegistry;

/**
 * One benchmark configuration, written as a JSON file (snake_case keys) and handed unchanged to both the spiel4j
 * child ({@link BenchChild}) and the Python peer ({@code bench/peer_train.py}), so that both run the same
 * weights (or random shape), batches, thread count, steps, learning rate and seed.
 *
 * @param workload    which {@link BenchWorkload.Factory} runs it in the Java child ("engine" for the real one)
 * @param model       the model: pretrained weights (GGUF for Java, HF directory for the peer) or a random shape
 * @param method      full, lora, ia3, spiel-ag or spiel-ma (the peer accepts full and lora)
 * @param budget      the trainable-parameter budget: a LoRA rank and, for sparse methods, the delta count
 * @param dtype       fp32 or bf16 (base weights), or nf4 (block linears stored as NF4, computed in fp32: qSpIEL,
 *                    qLoRA)
 * @param threads     intra-op threads (torch.set_num_threads / the engine's thread count)
 * @param steps       measured optimizer steps
 * @param warmupSteps steps run first and excluded from timing
 * @param lr          learning rate
 * @param weightDecay decoupled weight decay
 * @param seed        seed for everything random (initialisation, indices, dropout)
 * @param batches     the pre-tokenized batch file ({@link BatchFile}); train step i uses batch i mod count
 * @param activationCheckpointing whether the forward pass keeps only each block's input and recomputes the block
 *                    inside its backward pass (spiel4j: {@code BackwardPass.CHECKPOINTED}, else
 *                    {@code BLOCK_WISE}; the peer: {@code gradient_checkpointing_enable()}). A spec file without
 *                    {@code activation_checkpointing} means false: both sides read it so, and that is what every
 *                    spec written before the key existed measured
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
record BenchSpec(String workload, Model model, String method, Budget budget, String dtype, int threads,
                 int steps, int warmupSteps, double lr, double weightDecay, long seed, String batches,
                 boolean activationCheckpointing) {

    /** Base-weight types: fp32, bf16, and nf4 (block linears as NF4, the rest fp32). */
    public static final List<String> DTYPES = List.of("fp32", "bf16", "nf4");
    /** The methods the Python peer runs (in fp32 and bf16: its NF4 needs bitsandbytes on a GPU). */
    public static final List<String> PEER_METHODS = List.of("lora", "full");
    private static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true);

    static {
        // true or false only, as the peer reads it: Jackson would otherwise take 7 or "yes" for a boolean
        JSON.coercionConfigFor(LogicalType.Boolean).setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.String, CoercionAction.Fail);
    }

    public BenchSpec {
        require(workload != null && !workload.isBlank(), "workload is required");
        require(model != null, "model is required");
        require(MethodRegistry.contains(method), "method must be one of " + MethodRegistry.names() + ", got "
                + method);
        require(budget != null, "budget is required");
        require(DTYPES.contains(dtype), "dtype must be one of " + DTYPES + ", got " + dtype);
        require(threads > 0, "threads must be positive, got " + threads);
        require(steps > 0, "steps must be positive, got " + steps);
        require(warmupSteps >= 0, "warmup_steps must be >= 0, got " + warmupSteps);
        require(lr > 0 && Double.isFinite(lr), "lr must be positive, got " + lr);
        require(weightDecay >= 0, "weight_decay must be >= 0, got " + weightDecay);
        require(batches != null && !batches.isBlank(), "batches (a batch file path) is required");
    }

    /** This configuration with activation checkpointing on or off. */
    public BenchSpec withActivationCheckpointing(boolean on) {
        return new BenchSpec(workload, model, method, budget, dtype, threads, steps, warmupSteps, lr, weightDecay, seed,
                batches, on);
    }

    /**
     * The model. Exactly one of: pretrained weights ({@code gguf} and/or {@code hfDir}: the same weights in the
     * two formats, each side reads the one it can) or {@code random} (a shape initialised with {@code random.seed}).
     *
     * @param name a label for reports ("stories260K", "llama-100M")
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Model(String name, String gguf, String hfDir, RandomShape random) {
        public Model {
            require(name != null && !name.isBlank(), "model name is required");
            boolean pretrained = gguf != null || hfDir != null;
            require(pretrained != (random != null), "model '" + name + "' needs either gguf/hf_dir or random, not both");
        }
    }

    /** A randomly initialised LLaMA shape (the fields of {@code dev.spiel4j.model.LlamaConfig}). */
    public record RandomShape(int dim, int layers, int heads, int kvHeads, int ffnDim, int vocabSize,
                              int contextLength, double normEps, double ropeTheta, boolean tiedEmbeddings,
                              long seed) {
        public RandomShape {
            require(dim > 0 && layers > 0 && heads > 0 && kvHeads > 0 && ffnDim > 0 && vocabSize > 0
                    && contextLength > 0, "random shape sizes must be positive");
            require(dim % heads == 0 && heads % kvHeads == 0, "random shape: dim % heads and heads % kv_heads must be 0");
        }

        /** The engine's configuration of this shape. */
        public LlamaConfig config() {
            return new LlamaConfig(dim, layers, heads, kvHeads, ffnDim, vocabSize, contextLength, (float) normEps,
                    (float) ropeTheta, RopeLayout.ROTATE_HALF, tiedEmbeddings);
        }

        /** Parameters of the whole model (embedding, blocks, norms, head unless tied). */
        public long parameters() {
            long kv = (long) kvHeads * (dim / heads);
            long block = 2L * dim * dim + 2L * dim * kv + 3L * dim * ffnDim + 2L * dim;
            long embed = (long) vocabSize * dim;
            return embed + layers * block + dim + (tiedEmbeddings ? 0 : embed);
        }

        /** LoRA's trainable parameters at rank r over q,k,v,o,gate,up,down: r * sum(in + out). */
        public long loraParameters(int rank) {
            long kv = (long) kvHeads * (dim / heads);
            long perLayer = 2L * dim + 2L * (dim + kv) + 2L * dim + 3L * (dim + ffnDim);
            return (long) rank * layers * perLayer;
        }
    }

    /**
     * The trainable-parameter budget. {@code deltas} is the sparse methods' delta count; the harness sets it to
     * LoRA's parameter count at {@code loraRank} so that all methods compare at the same budget.
     */
    public record Budget(int loraRank, double loraAlpha, double loraDropout, long deltas) {
        public Budget {
            require(loraRank > 0, "lora_rank must be positive, got " + loraRank);
            require(loraDropout >= 0 && loraDropout < 1, "lora_dropout must be in [0, 1), got " + loraDropout);
            require(deltas >= 0, "deltas must be >= 0, got " + deltas);
        }
    }

    public void write(Path file) {
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), this);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write bench spec " + file, e);
        }
    }

    /** Reads a spec file; a malformed or invalid spec fails with a message naming the file. */
    public static BenchSpec read(Path file) {
        try {
            return JSON.readValue(file.toFile(), BenchSpec.class);
        } catch (IOException e) {
            throw new IllegalArgumentException("bench spec " + file + " is not valid: " + rootMessage(e), e);
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null) {
            t = t.getCause();
        }
        return t.getMessage();
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("bench spec: " + message);
        }
    }
}
