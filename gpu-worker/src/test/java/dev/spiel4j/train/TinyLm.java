package dev.spiel4j.train;

import dev.spiel4j.model.CausalLm;
import dev.spiel4j.model.ForwardSegments;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import dev.spiel4j.data.Batch;
import dev.spiel4j.model.LinearLayers;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Test-only causal LM built from block linears with canonical names, so every fine-tuning method can be trained
 * without the real decoder: {@code h = onehot(tokens) E; h += v_proj(h); h += down(gelu(up(h))); logits = h H^T}.
 * Position-wise (no attention), which is enough to learn a deterministic next-token rule.
 */
public final class TinyLm implements CausalLm, AutoCloseable {
    public static final String V = "model.layers.0.self_attn.v_proj";
    public static final String UP = "model.layers.0.mlp.up_proj";
    public static final String DOWN = "model.layers.0.mlp.down_proj";

    final int vocab;
    private final NDManager manager;
    private final Map<String, NDArray> weights = new LinkedHashMap<>();

    public TinyLm(int vocab, int dim, int ffn, long seed) {
        this.vocab = vocab;
        this.manager = NDManager.newBaseManager();
        Random rng = new Random(seed);
        put("model.embed_tokens.weight", rng, vocab, dim, 1.0);
        put(V + ".weight", rng, dim, dim, 1 / Math.sqrt(dim));
        put(UP + ".weight", rng, ffn, dim, 1 / Math.sqrt(dim));
        put(DOWN + ".weight", rng, dim, ffn, 1 / Math.sqrt(ffn));
        put("lm_head.weight", rng, vocab, dim, 1 / Math.sqrt(dim));
    }

    private void put(String name, Random rng, int rows, int cols, double std) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rng.nextGaussian() * std);
        }
        weights.put(name, manager.create(v, new Shape(rows, cols)));
    }

    /** One block: {@code h += v_proj(h); h += down(gelu(up(h)))}. */
    @Override
    public ForwardSegments segments(NDManager scope, NDArray tokens, NDArray attentionMask) {
        return new ForwardSegments() {
            @Override
            public NDArray embed() {
                return tokens.oneHot(vocab).matMul(weights.get("model.embed_tokens.weight"));
            }

            @Override
            public int blocks() {
                return 1;
            }

            @Override
            public NDArray block(int layer, NDArray x, LinearLayers linears) {
                NDArray h = x.add(linears.apply(V, x, weights.get(V + ".weight")));
                NDArray a = Activation.gelu(linears.apply(UP, h, weights.get(UP + ".weight")));
                return h.add(linears.apply(DOWN, a, weights.get(DOWN + ".weight")));
            }

            @Override
            public NDArray head(NDArray x) {
                return LinearLayers.dense(x, weights.get("lm_head.weight"));
            }
        };
    }

    @Override
    public Map<String, NDArray> weights() {
        return weights;
    }

    @Override
    public NDManager manager() {
        return manager;
    }

    @Override
    public void close() {
        manager.close();
    }

    /** Rows of a rule the base model does not know: next = (5 * token + 3) mod vocab; seeded. */
    public static List<Batch> rule(int vocab, int batches, int size, int seqLen, long seed) {
        Random rng = new Random(seed);
        List<Batch> out = new ArrayList<>();
        for (int b = 0; b < batches; b++) {
            long[] in = new long[size * seqLen];
            long[] tgt = new long[size * seqLen];
            float[] mask = new float[size * seqLen];
            List<String> ids = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                long tok = rng.nextInt(vocab);
                for (int t = 0; t < seqLen; t++) {
                    in[r * seqLen + t] = tok;
                    tok = (5 * tok + 3) % vocab;
                    tgt[r * seqLen + t] = tok;
                    mask[r * seqLen + t] = 1;
                }
                ids.add("ex" + b + "-" + r);
            }
            out.add(new Batch(size, seqLen, in, tgt, mask, mask.clone(), ids));
        }
        return out;
    }
}
