package dev.spiel4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Activation;
import dev.spiel4j.engine.Casts;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.quant.Nf4Array;
import dev.spiel4j.quant.Nf4Tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * A LLaMA-family decoder on DJL: token embedding, pre-norm blocks of RMSNorm, rotary grouped-query attention with a
 * causal and a key-padding mask, and a SwiGLU feed-forward, then a final RMSNorm and a tied or untied head. The
 * whole forward pass reads top to bottom in {@link Segments}: embedding, blocks, head.
 *
 * <p>With {@link WeightStorage#NF4} the block linears are held as NF4 and dequantized into the forward pass's scope
 * just before their {@link LinearLayers} call, which still receives a dense {@code [out, in]} weight.
 *
 * <p>The base weights are frozen and owned by this model's manager. Every op of a forward pass is called on an
 * array that lives in the caller's scope (weights only ever appear as arguments), so all intermediates and the
 * result are freed when the scope closes and the weights' manager gains nothing. A forward pass does not modify
 * the model; a fine-tuning method's {@link LinearLayers} must keep the same discipline (see
 * {@link LinearLayers#dense(NDArray, NDArray)}).
 *
 * <p>Compute type FLOAT32 or FLOAT16: weights are converted on the host (BF16 files are widened there; a BF16
 * NDArray aborts the JVM in DJL's PyTorch JNI). Norms, attention softmax and logits are computed in float32.
 */
public final class LlamaModel implements CausalLm, AutoCloseable {
    /** Additive attention bias for masked keys: finite, so a fully masked row stays a (useless) finite average. */
    private static final float MASKED = -1e9f;

    private final LlamaConfig config;
    private final DataType computeType;
    private final WeightStorage storage;
    private final NDManager manager;
    private final Map<String, NDArray> weights;
    /** Block-linear weights held as NF4 (empty with dense storage), by canonical name. */
    private final Map<String, Nf4Array> quantized;
    /** cos and sin of every position's rotation angles, laid out for {@link LlamaConfig#ropeLayout()}: [ctx, hd]. */
    private final NDArray ropeCos;
    private final NDArray ropeSin;
    /** [hd, hd] signed permutation with {@code x @ rotate} = the rotary partner of each element (negated first). */
    private final NDArray rotate;

    private LlamaModel(LlamaConfig config, Map<String, HostTensor> tensors, NDManager parent, DataType computeType,
                       WeightStorage storage) {
        if (computeType != DataType.FLOAT32 && computeType != DataType.FLOAT16) {
            throw new IllegalArgumentException("compute type " + computeType + " is not supported (FLOAT32 or"
                    + " FLOAT16; bfloat16 NDArrays abort the JVM in DJL's PyTorch engine)");
        }
        checkTensors(config, tensors);
        this.config = config;
        this.computeType = computeType;
        this.storage = Objects.requireNonNull(storage, "weight storage");
        this.manager = parent.newSubManager();
        this.manager.setName("llama-weights");
        try {
            Set<String> toQuantize = storage == WeightStorage.NF4 ? blockLinearWeights(config) : Set.of();
            Map<String, NDArray> w = new LinkedHashMap<>();
            Map<String, Nf4Array> q = new LinkedHashMap<>();
            for (String name : config.tensorShapes().keySet()) {
                HostTensor t = tensors.get(name);
                if (toQuantize.contains(name)) {
                    q.put(name, Nf4Array.upload(Nf4Tensor.quantize(name, t.toFloats(), t.shape()), manager));
                } else {
                    NDArray a = upload(t);
                    a.setName(name);
                    w.put(name, a);
                }
            }
            this.weights = Collections.unmodifiableMap(w);
            this.quantized = Collections.unmodifiableMap(q);
            float[][] tables = ropeTables(config);
            this.ropeCos = upload(tables[0], new Shape(config.contextLength(), config.headDim()));
            this.ropeSin = upload(tables[1], new Shape(config.contextLength(), config.headDim()));
            this.rotate = upload(tables[2], new Shape(config.headDim(), config.headDim()));
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** Uploads a loaded model's weights; the model owns them in a sub-manager of {@code parent}. */
    public static LlamaModel create(LoadedModel loaded, NDManager parent, DataType computeType) {
        return create(loaded, parent, computeType, WeightStorage.DENSE);
    }

    /** Uploads a loaded model's weights, the block linears stored as {@code storage} says. */
    public static LlamaModel create(LoadedModel loaded, NDManager parent, DataType computeType,
                                    WeightStorage storage) {
        return new LlamaModel(loaded.config(), loaded.tensors(), parent, computeType, storage);
    }

    /** Uploads the given tensors (canonical names, see {@link LlamaConfig#tensorShapes()}). */
    public static LlamaModel create(LlamaConfig config, Map<String, HostTensor> tensors, NDManager parent,
                                    DataType computeType) {
        return new LlamaModel(config, tensors, parent, computeType, WeightStorage.DENSE);
    }

    /**
     * A model with seeded random weights (normal, std 0.02; norm weights 1), for tests and benchmarks that need
     * a shape rather than a trained model.
     */
    public static LlamaModel random(LlamaConfig config, long seed, NDManager parent, DataType computeType) {
        return random(config, seed, parent, computeType, WeightStorage.DENSE);
    }

    /** {@link #random(LlamaConfig, long, NDManager, DataType)}, the block linears stored as {@code storage} says. */
    public static LlamaModel random(LlamaConfig config, long seed, NDManager parent, DataType computeType,
                                    WeightStorage storage) {
        Random random = new Random(seed);
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        config.tensorShapes().forEach((name, shape) -> {
            int n = Math.toIntExact(HostTensor.numel(shape));
            ByteBuffer data = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
            boolean norm = shape.length == 1;
            for (int i = 0; i < n; i++) {
                data.putFloat(norm ? 1f : (float) (0.02 * random.nextGaussian()));
            }
            tensors.put(name, new HostTensor(name, shape, HostDType.F32, data.flip()));
        });
        return new LlamaModel(config, tensors, parent, computeType, storage);
    }

    public LlamaConfig config() {
        return config;
    }

    public DataType computeType() {
        return computeType;
    }

    /**
     * The frozen base weights held densely, by canonical name (live arrays; no {@code lm_head.weight} when tied;
     * without the block linears when they are stored as NF4, see {@link #parameterShapes()}).
     */
    public Map<String, NDArray> weights() {
        return weights;
    }

    /** Bytes the base weights hold on the engine: the dense ones in their type, the NF4 ones packed. */
    public long weightBytes() {
        long bytes = 0;
        for (NDArray w : weights.values()) {
            bytes += w.getShape().size() * w.getDataType().getNumOfBytes();
        }
        for (Nf4Array q : quantized.values()) {
            bytes += q.bytes();
        }
        return bytes;
    }

    /** Every base weight's shape, the NF4 block linears included, in {@link LlamaConfig#tensorShapes()} order. */
    @Override
    public Map<String, Shape> parameterShapes() {
        Map<String, Shape> shapes = new LinkedHashMap<>();
        config.tensorShapes().forEach((name, shape) -> shapes.put(name, new Shape(shape)));
        return Collections.unmodifiableMap(shapes);
    }

    /** How the block linears are stored. */
    public WeightStorage weightStorage() {
        return storage;
    }

    /** The manager that owns the weights. */
    public NDManager manager() {
        return manager;
    }

    @Override
    public void close() {
        manager.close();
    }

    /**
     * The training and scoring forward pass, cut at the block boundaries (see {@link ForwardSegments}); its
     * {@link ForwardSegments#logits} is {@link #forward}.
     *
     * @param scope         receives what the blocks share; each segment's intermediates go to its input's manager
     * @param tokens        {@code [B, T]} int64 token ids
     * @param attentionMask {@code [B, T]} 1 for real tokens and 0 for padding (left or right), or null for none.
     *                      Padded keys are never attended to and positions count real tokens only, so a padded row
     *                      gives the same logits at its real tokens as the row alone.
     */
    @Override
    public ForwardSegments segments(NDManager scope, NDArray tokens, NDArray attentionMask) {
        return new Segments(scope, tokens, attentionMask, null);
    }

    /** The decoder's math, top to bottom: embedding, blocks, head; with a KV cache when generating. */
    private final class Segments implements ForwardSegments {
        private final int b;
        private final int t;
        private final NDArray ids;
        /** Rotary tables at each token's position: [B or 1, T, 1, hd]. */
        private final NDArray cos;
        private final NDArray sin;
        /** Causal and key-padding bias: [B or 1, 1, 1, T, S]. */
        private final NDArray bias;
        private final KvCache cache;

        Segments(NDManager scope, NDArray tokens, NDArray attentionMask, KvCache cache) {
            Shape shape = tokens.getShape();
            if (shape.dimension() != 2 || (attentionMask != null && !attentionMask.getShape().equals(shape))) {
                throw new IllegalArgumentException("tokens must be [batch, time] and the attention mask the same shape;"
                        + " got " + shape + " and " + (attentionMask == null ? "no mask" : attentionMask.getShape()));
            }
            this.b = (int) shape.get(0);
            this.t = (int) shape.get(1);
            this.cache = cache;
            int past = cache == null ? 0 : cache.length;
            if (past + t > config.contextLength()) {
                throw new IllegalArgumentException((past + t) + " positions exceed the context length "
                        + config.contextLength());
            }
            this.ids = inScope(scope, tokens).toType(DataType.INT64, false);
            NDArray mask = attentionMask == null ? null
                    : inScope(scope, attentionMask).toType(DataType.FLOAT32, false);
            NDArray positions = positions(scope, mask, t, past);                 // [B or 1, T]
            this.cos = gatherRows(positions, ropeCos).expandDims(2);
            this.sin = gatherRows(positions, ropeSin).expandDims(2);
            this.bias = attentionBias(scope, mask, t, past);
        }

        @Override
        public NDArray embed() {
            return gatherRows(ids, weights.get(ModuleNames.EMBED));                 // [B, T, dim]
        }

        @Override
        public int blocks() {
            return config.layers();
        }

        @Override
        public NDArray block(int l, NDArray x, LinearLayers linears) {
            int heads = config.heads();
            int kvHeads = config.kvHeads();
            int hd = config.headDim();
            NDArray h = rmsNorm(x, weights.get(ModuleNames.attnNorm(l)));
            NDArray q = linear(linears, l, "self_attn.q_proj", h).reshape(b, t, heads, hd);
            NDArray k = linear(linears, l, "self_attn.k_proj", h).reshape(b, t, kvHeads, hd);
            NDArray v = linear(linears, l, "self_attn.v_proj", h).reshape(b, t, kvHeads, hd);
            q = rope(q, cos, sin);
            k = rope(k, cos, sin);
            if (cache != null) {
                k = cache.append(cache.keys, l, k);
                v = cache.append(cache.values, l, v);
            }
            NDArray attended = attention(q, k, v, bias).reshape(b, t, config.dim());
            x = x.add(linear(linears, l, "self_attn.o_proj", attended));

            h = rmsNorm(x, weights.get(ModuleNames.ffnNorm(l)));
            NDArray gate = linear(linears, l, "mlp.gate_proj", h);
            NDArray up = linear(linears, l, "mlp.up_proj", h);
            return x.add(linear(linears, l, "mlp.down_proj", gate.mul(Activation.sigmoid(gate)).mul(up)));
        }

        @Override
        public NDArray head(NDArray x) {
            NDArray normed = rmsNorm(x, weights.get(ModuleNames.FINAL_NORM));
            NDArray head = weights.get(config.tiedEmbeddings() ? ModuleNames.EMBED : ModuleNames.LM_HEAD);
            return Casts.to(LinearLayers.dense(normed, head), DataType.FLOAT32);
        }
    }

    private NDArray linear(LinearLayers linears, int layer, String shortName, NDArray x) {
        String module = ModuleNames.linear(layer, shortName);
        NDArray weight = weights.get(module + ".weight");
        if (weight != null) {
            return linears.apply(module, x, weight);
        }
        // NF4: a dense copy for this call only. Autograd keeps it where a backward pass reads it (x W^T's input
        // gradient); where it does not (a method that adds its delta first reads W + delta instead), closing it here
        // frees it now rather than with the block's scope.
        NDArray dequantized = quantized.get(module + ".weight").dequantize(x.getManager());
        NDArray copy = dequantized;
        if (computeType != DataType.FLOAT32) {
            copy = dequantized.toType(computeType, false);
            dequantized.close();
        }
        NDArray y = linears.apply(module, x, copy);
        copy.close();
        return y;
    }

    /** x / rms(x) * w, computed in float32 (a float16 sum of squares overflows easily). */
    private NDArray rmsNorm(NDArray x, NDArray weight) {
        NDArray x32 = Casts.to(x, DataType.FLOAT32);
        NDArray eps = EngineArrays.scalar(x.getManager(), config.normEps());
        NDArray rms = x32.square().mean(new int[]{-1}, true).add(eps).sqrt();
        return Casts.to(x32.div(rms), computeType).mul(weight);
    }

    /** Rotary embedding of {@code x} [B, T, heads, hd]: x cos + partner(x) sin, the layout lives in the tables. */
    private NDArray rope(NDArray x, NDArray cos, NDArray sin) {
        return x.mul(cos).add(x.matMul(rotate).mul(sin));
    }

    /**
     * Grouped-query attention without repeating keys: the G query heads that share a key/value head become a
     * broadcast axis. q [B, T, H, hd], k and v [B, S, KV, hd], bias [B or 1, 1, 1, T, S] -> [B, T, H, hd].
     * Head h uses key/value head h / G, as in LLaMA's repeat_kv.
     */
    private NDArray attention(NDArray q, NDArray k, NDArray v, NDArray bias) {
        long b = q.getShape().get(0);
        long t = q.getShape().get(1);
        int kvHeads = config.kvHeads();
        int groups = config.heads() / kvHeads;
        int hd = config.headDim();
        NDArray q5 = q.reshape(b, t, kvHeads, groups, hd).transpose(0, 2, 3, 1, 4);   // [B, KV, G, T, hd]
        NDArray kT = k.transpose(0, 2, 3, 1).expandDims(2);                             // [B, KV, 1, hd, S]
        NDArray v5 = v.transpose(0, 2, 1, 3).expandDims(2);                             // [B, KV, 1, S, hd]
        NDArray scale = EngineArrays.scalar(q.getManager(), 1.0 / Math.sqrt(hd));
        NDArray raw = Casts.to(q5.mul(scale).matMul(kT), DataType.FLOAT32);
        NDArray scores = raw.add(bias);
        // A manager keeps its arrays until it closes, autograd only what a backward step reads: neither the sum's
        // nor the softmax's backward reads these [B, KV, G, T, S] inputs, so they go now rather than with the block
        raw.close();
        NDArray probs = Casts.to(scores.softmax(-1), computeType);                      // [B, KV, G, T, S]
        scores.close();
        return probs.matMul(v5).transpose(0, 3, 1, 2, 4);                               // [B, T, KV, G, hd]
    }

    /**
     * Rotary positions: past, past+1, ... without a mask; with a mask each row counts its real tokens, so left
     * padding does not shift them (padding positions get a clamped, irrelevant value).
     */
    private static NDArray positions(NDManager scope, NDArray mask, int t, int past) {
        if (mask == null) {
            return scope.arange(past, past + t, 1, DataType.INT64).reshape(1, t);
        }
        return mask.cumSum(1).sub(EngineArrays.scalar(scope, 1)).clip(0, Integer.MAX_VALUE).toType(DataType.INT64, false);
    }

    /** Causal bias [1, 1, 1, T, S] (key s visible to query t when s <= past + t) plus the key-padding bias. */
    private static NDArray attentionBias(NDManager scope, NDArray mask, int t, int past) {
        int s = past + t;
        float[] causal = new float[t * s];
        for (int i = 0; i < t; i++) {
            Arrays.fill(causal, i * s + past + i + 1, (i + 1) * s, MASKED);
        }
        NDArray bias = EngineArrays.of(scope, causal, new Shape(1, 1, 1, t, s));
        if (mask == null) {
            return bias;
        }
        if (past != 0) {
            throw new IllegalArgumentException("an attention mask cannot be combined with a KV cache");
        }
        long b = mask.getShape().get(0);
        return mask.sub(EngineArrays.scalar(scope, 1)).mul(EngineArrays.scalar(scope, -MASKED)).reshape(b, 1, 1, 1, s).add(bias);
    }

    /** table[index] for every index, attached to the indices' manager (table is only an argument). */
    private static NDArray gatherRows(NDArray indices, NDArray table) {
        return indices.getNDArrayInternal().embedding(indices, table, SparseFormat.DENSE).singletonOrThrow();
    }

    private static NDArray inScope(NDManager scope, NDArray a) {
        if (a.getManager() == scope) {
            return a;
        }
        return switch (a.getDataType()) {
            case INT64 -> EngineArrays.of(scope, a.toLongArray(), a.getShape());
            case INT32 -> EngineArrays.of(scope, a.toIntArray(), a.getShape());
            default -> EngineArrays.of(scope, a.toType(DataType.FLOAT32, false).toFloatArray(), a.getShape());
        };
    }

    // ---------------------------------------------------------------- generation

    /**
     * Generates up to {@code config.maxNewTokens()} tokens after {@code prompt} with a KV cache: the prompt in one
     * pass, then one token per pass. Stops after EOS (not returned) or at the context length.
     *
     * @param prompt the context, usually starting with BOS; at least one token
     * @param eosId  the end-of-sequence id, or -1 to never stop early
     * @return the generated ids
     */
    public int[] generate(int[] prompt, int eosId, GenerationConfig config, LinearLayers linears) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("generation needs at least one prompt token (e.g. BOS)");
        }
        for (int id : prompt) {
            if (id < 0 || id >= this.config.vocabSize()) {
                throw new IllegalArgumentException("prompt token " + id + " is outside the vocabulary of "
                        + this.config.vocabSize());
            }
        }
        if (prompt.length > this.config.contextLength()) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens exceeds the context length "
                    + this.config.contextLength());
        }
        TokenSampler sampler = new TokenSampler(config);
        int[] out = new int[config.maxNewTokens()];
        int produced = 0;
        long[] input = Arrays.stream(prompt).asLongStream().toArray();
        try (KvCache cache = new KvCache(manager.newSubManager(), this.config.layers())) {
            while (produced < config.maxNewTokens() && cache.length + input.length <= this.config.contextLength()) {
                float[] last;
                NDArray[] previous = cache.arrays();
                try (NDManager step = manager.newSubManager()) {
                    // ops on the cached arrays must land in this step, so lend them to it; it hands them back
                    for (NDArray a : previous) {
                        a.tempAttach(step);
                    }
                    NDArray tokens = EngineArrays.of(step, input, new Shape(1, input.length));
                    NDArray logits = new Segments(step, tokens, null, cache).logits(linears);
                    cache.length += input.length;
                    last = logits.get(0, input.length - 1).toFloatArray();
                    cache.keep();
                }
                for (NDArray a : previous) {
                    a.close();
                }
                int next = sampler.next(last);
                if (next == eosId) {
                    break;
                }
                out[produced++] = next;
                input = new long[]{next};
            }
        }
        return Arrays.copyOf(out, produced);
    }

    /** Keys and values of every layer so far ([1, S, KV, hd] each), owned by the cache's own manager. */
    private static final class KvCache implements AutoCloseable {
        final NDManager manager;
        final NDArray[] keys;
        final NDArray[] values;
        int length;

        KvCache(NDManager manager, int layers) {
            this.manager = manager;
            this.keys = new NDArray[layers];
            this.values = new NDArray[layers];
        }

        /** Appends this step's entries along time; the result lives in the step until {@link #keep()}. */
        NDArray append(NDArray[] store, int layer, NDArray current) {
            NDArray all = store[layer] == null ? current : store[layer].concat(current, 1);
            store[layer] = all;
            return all;
        }

        /** Moves the arrays appended in this step from the step's scope into the cache. */
        void keep() {
            for (NDArray a : arrays()) {
                a.attach(manager);
            }
        }

        NDArray[] arrays() {
            return Arrays.stream(new NDArray[][]{keys, values}).flatMap(Arrays::stream)
                    .filter(a -> a != null).toArray(NDArray[]::new);
        }

        @Override
        public void close() {
            manager.close();
        }
    }

    // ---------------------------------------------------------------- weights on the host

    private static Set<String> blockLinearWeights(LlamaConfig config) {
        return ModuleNames.allLinears(config.layers()).stream().map(m -> m + ".weight").collect(Collectors.toSet());
    }

    private static void checkTensors(LlamaConfig config, Map<String, HostTensor> tensors) {
        config.tensorShapes().forEach((name, shape) -> {
            HostTensor t = tensors.get(name);
            if (t == null) {
                throw new IllegalArgumentException("missing tensor " + name);
            }
            if (!Arrays.equals(t.shape(), shape)) {
                throw new IllegalArgumentException("tensor " + name + " has shape " + Arrays.toString(t.shape())
                        + " but the config needs " + Arrays.toString(shape));
            }
            if (t.dtype() != HostDType.F32 && t.dtype() != HostDType.F16 && t.dtype() != HostDType.BF16) {
                throw new IllegalArgumentException("tensor " + name + " holds " + t.dtype() + ", not floating point");
            }
        });
    }

    /**
     * Reads a host tensor into a native-order direct buffer, converting it on the host (a memory-mapped file's
     * buffer is never handed to DJL, which would wrap it rather than read it), and copies that into engine memory
     * ({@link EngineArrays}); float16 targets are narrowed by the engine from float32 unless the file already holds
     * float16.
     */
    private NDArray upload(HostTensor t) {
        Shape shape = new Shape(t.shape());
        int n = Math.toIntExact(t.numel());
        if (computeType == DataType.FLOAT16 && t.dtype() == HostDType.F16) {
            ByteBuffer copy = ByteBuffer.allocateDirect(2 * n).order(ByteOrder.nativeOrder());
            copy.put(t.data().duplicate()).flip();
            return EngineArrays.of(manager, copy, shape, DataType.FLOAT16);
        }
        ByteBuffer f32 = ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder());
        if (t.dtype() == HostDType.F32) {
            f32.asFloatBuffer().put(t.data().duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer());
        } else {
            f32.asFloatBuffer().put(t.toFloats());
        }
        return toCompute(EngineArrays.of(manager, f32, shape, DataType.FLOAT32));
    }

    private NDArray upload(float[] values, Shape shape) {
        return toCompute(EngineArrays.of(manager, values, shape));
    }

    private NDArray toCompute(NDArray f32) {
        if (computeType == DataType.FLOAT32) {
            return f32;
        }
        NDArray converted = f32.toType(computeType, false);
        f32.close();
        return converted;
    }

    /**
     * cos and sin tables [ctx, hd] and the [hd, hd] rotation for the config's layout. Pair i (frequency
     * theta^(-2i/hd)) is (2i, 2i+1) when INTERLEAVED and (i, i + hd/2) when ROTATE_HALF; for a pair (a, b) the
     * rotated values are (a cos - b sin, b cos + a sin), so the rotation maps a to b and b to -a.
     */
    private static float[][] ropeTables(LlamaConfig config) {
        int hd = config.headDim();
        int half = hd / 2;
        int ctx = config.contextLength();
        float[] cos = new float[ctx * hd];
        float[] sin = new float[ctx * hd];
        float[] rot = new float[hd * hd];
        for (int i = 0; i < half; i++) {
            int a = config.ropeLayout() == RopeLayout.INTERLEAVED ? 2 * i : i;
            int b = config.ropeLayout() == RopeLayout.INTERLEAVED ? 2 * i + 1 : i + half;
            rot[b * hd + a] = -1; // out[a] = -x[b]
            rot[a * hd + b] = 1;  // out[b] = x[a]
            double freq = Math.pow(config.ropeTheta(), -2.0 * i / hd);
            for (int p = 0; p < ctx; p++) {
                double angle = p * freq;
                cos[p * hd + a] = cos[p * hd + b] = (float) Math.cos(angle);
                sin[p * hd + a] = sin[p * hd + b] = (float) Math.sin(angle);
            }
        }
        return new float[][]{cos, sin, rot};
    }
}
