package dev.spiel4j.peft.ia3;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.peft.internal.AdapterMethod;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.peft.TargetMatrix;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * (IA)3 baseline (Liu et al., 2022): learned vectors, initialised to 1, that rescale the key and value projections'
 * outputs and the feed-forward intermediate activation (the input of {@code down_proj}). Trained with AdamW.
 */
final class Ia3 extends AdapterMethod {
    /** The modules (IA)3 attaches to. */
    public static final List<String> TARGETS = List.of("self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj");

    /** Module -> whether its vector scales the input (down_proj) rather than the output (k, v). */
    private final Map<String, Boolean> scalesInput = new HashMap<>();

    public Ia3(Ia3Config config, List<TargetMatrix> targets, NDManager manager) {
        super(config.name(), config.optimizer(), manager);
        for (TargetMatrix t : targets) {
            boolean input = t.module().endsWith("mlp.down_proj");
            int n = input ? t.cols() : t.rows();
            float[] ones = new float[n];
            Arrays.fill(ones, 1f);
            params.add(t.module() + ".ia3_l", new long[]{n}, ones);
            scalesInput.put(t.module(), input);
        }
    }

    @Override
    public NDArray apply(String module, NDArray x, NDArray weight) {
        Boolean input = scalesInput.get(module);
        if (input == null) {
            return LinearLayers.dense(x, weight);
        }
        NDArray l = params.get(module + ".ia3_l", x);
        return input ? LinearLayers.dense(x.mul(l), weight) : LinearLayers.dense(x, weight).mul(l);
    }
}
