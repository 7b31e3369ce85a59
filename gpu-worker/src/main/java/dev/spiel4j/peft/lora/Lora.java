package dev.spiel4j.peft.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.peft.internal.AdapterMethod;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.peft.TargetMatrix;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * LoRA baseline: {@code y = x W^T + (alpha / r) * dropout(x) A^T B^T} on the targeted linears, with
 * {@code A [r, in]} drawn like PEFT's kaiming-uniform ({@code U(-1/sqrt(in), 1/sqrt(in))}, seeded) and
 * {@code B [out, r] = 0}, so training starts at the base model. {@code r * (in + out)} parameters per target.
 * Dropout masks are drawn on the host from the config's seed, the step, the micro-batch and the module, so runs are
 * reproducible; no dropout outside training steps.
 */
final class Lora extends AdapterMethod {
    private final LoraConfig config;
    private final Set<String> modules = new HashSet<>();
    private final float scale;
    private int step;

    public Lora(LoraConfig config, List<TargetMatrix> targets, NDManager manager) {
        super(config.name(), config.optimizer(), manager);
        this.config = config;
        this.scale = config.alpha() / config.rank();
        int r = config.rank();
        SplittableRandom rng = new SplittableRandom(config.seed());
        for (TargetMatrix t : targets) {
            modules.add(t.module());
            float[] a = new float[r * t.cols()];
            double bound = 1 / Math.sqrt(t.cols());
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) rng.nextDouble(-bound, bound);
            }
            params.add(t.module() + ".lora_A.weight", new long[]{r, t.cols()}, a);
            params.add(t.module() + ".lora_B.weight", new long[]{t.rows(), r}, new float[t.rows() * r]);
        }
    }

    @Override
    public NDArray apply(String module, NDArray x, NDArray weight) {
        return forward(module, x, weight, null);
    }

    @Override
    public LinearLayers trainingPass(int microBatch, boolean recordGradients) {
        int step = this.step;
        return (module, x, weight) -> forward(module, x, weight, config.dropout() > 0
                ? new SplittableRandom(mix(mix(mix(config.seed(), step), microBatch), module.hashCode())) : null);
    }

    /**
     * {@code x W^T + scale * dropout(x) A^T B^T}; {@code masks} draws the dropout mask, null for none. A mask is a
     * function of (seed, step, micro-batch, module) alone, so a resumed run draws the same masks, and a block's forward
     * pass recomputed by activation checkpointing draws the same mask as the first pass did.
     */
    private NDArray forward(String module, NDArray x, NDArray weight, SplittableRandom masks) {
        NDArray y = LinearLayers.dense(x, weight);
        if (!modules.contains(module)) {
            return y;
        }
        NDManager m = x.getManager();
        NDArray in = x;
        if (masks != null) {
            float keep = 1 - config.dropout();
            float[] mask = new float[Math.toIntExact(x.getShape().size())];
            for (int i = 0; i < mask.length; i++) {
                mask[i] = masks.nextDouble() < keep ? 1 / keep : 0f;
            }
            in = x.mul(EngineArrays.of(m, mask, x.getShape()).toType(x.getDataType(), false));
        }
        NDArray low = LinearLayers.dense(in, params.get(module + ".lora_A.weight", x));
        return y.add(LinearLayers.dense(low, params.get(module + ".lora_B.weight", x))
                .mul(EngineArrays.scalar(m, scale)));
    }

    /** One round of SplittableRandom's seed mixing (Stafford's variant 13) over {@code seed} and {@code value}. */
    private static long mix(long seed, long value) {
        long z = seed * 0x9E3779B97F4A7C15L + value;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override
    public void beginStep(NDManager scope, int step) {
        params.beginStep(scope);
        this.step = step;
    }
}
