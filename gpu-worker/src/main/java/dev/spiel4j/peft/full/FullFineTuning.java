package dev.spiel4j.peft.full;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.EngineArrays;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.optim.internal.AdamW;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.peft.MethodState;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Full fine-tuning baseline: every base weight (embeddings, norms, head and all linears) is trainable with AdamW.
 * Unlike the other methods it MODIFIES THE MODEL'S BASE WEIGHTS IN PLACE: after training, the model is the
 * fine-tuned model, and {@link #exportTensors()} returns all its weights. Requires float32 weights (an optimizer
 * step on a float16 copy would round small updates away).
 */
final class FullFineTuning implements FineTuningMethod {
    private final Map<String, NDArray> weights;
    private final Map<String, AdamW> adam = new LinkedHashMap<>();
    private NDManager scope;
    private final Map<String, NDArray> grads = new LinkedHashMap<>();
    private int lastStep;

    /** @param manager the model's manager: the optimizer state lives in sub-managers of it until {@link #close()} */
    public FullFineTuning(FullConfig config, Map<String, NDArray> weights, NDManager manager) {
        this.weights = new LinkedHashMap<>(new java.util.TreeMap<>(weights)); // name order: deterministic state layout
        for (Map.Entry<String, NDArray> e : this.weights.entrySet()) {
            if (e.getValue().getDataType() != DataType.FLOAT32) {
                throw new IllegalArgumentException("full fine-tuning needs float32 weights; '" + e.getKey() + "' is "
                        + e.getValue().getDataType());
            }
            adam.put(e.getKey(), new AdamW(manager, e.getValue().getShape(), config.optimizer()));
        }
    }

    @Override
    public String name() {
        return FullConfig.NAME;
    }

    @Override
    public long trainableParameters() {
        return weights.values().stream().mapToLong(NDArray::size).sum();
    }

    @Override
    public long optimizerStateBytes() {
        return adam.values().stream().mapToLong(AdamW::stateBytes).sum();
    }

    @Override
    public NDArray apply(String module, NDArray x, NDArray weight) {
        return LinearLayers.dense(x, weight);
    }

    @Override
    public void beginStep(NDManager stepScope, int step) {
        if (scope != null) {
            throw new IllegalStateException("a step is already in progress");
        }
        scope = stepScope;
        for (NDArray w : weights.values()) {
            w.setRequiresGradient(true);
        }
    }

    @Override
    public List<NDArray> gradients() {
        if (scope == null) {
            throw new IllegalStateException("no training step in progress");
        }
        if (grads.isEmpty()) {
            for (Map.Entry<String, NDArray> e : weights.entrySet()) {
                // The gradient handle is created in the weight's manager; move it to the step scope so it is freed.
                NDArray g = e.getValue().getGradient();
                g.attach(scope);
                grads.put(e.getKey(), g);
            }
        }
        return new ArrayList<>(grads.values());
    }

    @Override
    public void useGradients(List<NDArray> summed) {
        if (scope == null) {
            throw new IllegalStateException("no training step in progress");
        }
        if (summed.size() != weights.size()) {
            throw new IllegalArgumentException(summed.size() + " gradients for " + weights.size() + " weights");
        }
        grads.clear();
        int i = 0;
        for (Map.Entry<String, NDArray> e : weights.entrySet()) {
            NDArray g = summed.get(i++);
            if (!g.getShape().equals(e.getValue().getShape())) {
                throw new IllegalArgumentException("gradient of " + e.getKey() + " has shape " + g.getShape()
                        + ", the weight " + e.getValue().getShape());
            }
            grads.put(e.getKey(), g);
        }
    }

    @Override
    public boolean update(int step, float lr, float gradScale) {
        gradients();
        for (Map.Entry<String, NDArray> e : weights.entrySet()) {
            NDArray g = grads.get(e.getKey());
            adam.get(e.getKey()).step(e.getValue(), g, lr, gradScale); // the weight itself, in place
            // PyTorch accumulates into .grad across backward calls: clear it for the next step
            EngineArrays.fill(g, 0f);
        }
        grads.clear();
        scope = null;
        lastStep = step;
        return false;
    }

    @Override
    public void abortStep() {
        if (scope != null) {
            for (NDArray g : gradients()) {
                EngineArrays.fill(g, 0f); // not muli(0): a skipped step's NaN would stay
            }
        }
        grads.clear();
        scope = null;
    }

    @Override
    public Map<String, HostTensor> exportTensors() {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        weights.forEach((name, w) -> out.put(name, HostArrays.f32(name, w.getShape().getShape(), w.toFloatArray())));
        return out;
    }

    @Override
    public MethodState state() {
        Map<String, HostTensor> out = exportTensors();
        adam.forEach((name, a) -> {
            // flat, as the state file has always held them
            out.put(name + ".adamw.m", HostArrays.f32(name + ".adamw.m", new long[]{a.size()}, a.firstMoments()));
            out.put(name + ".adamw.v", HostArrays.f32(name + ".adamw.v", new long[]{a.size()}, a.secondMoments()));
            out.put(name + ".adamw.age", HostArrays.i32(name + ".adamw.age", a.ages()));
        });
        return new MethodState(name(), lastStep, out);
    }

    @Override
    public void restore(MethodState state) {
        weights.forEach((name, w) -> {
            float[] v = HostArrays.floats(state.require(name));
            if (v.length != w.size()) {
                throw new IllegalArgumentException(name + ": state holds " + v.length + " values, weight has " + w.size());
            }
            EngineArrays.copyInto(w, v);
            adam.get(name).restore(HostArrays.floats(state.require(name + ".adamw.m")),
                    HostArrays.floats(state.require(name + ".adamw.v")),
                    HostArrays.ints(state.require(name + ".adamw.age")));
        });
        lastStep = state.step();
    }

    /** Releases the optimizer state; the weights stay trained. */
    @Override
    public void close() {
        adam.values().forEach(AdamW::close);
    }
}
