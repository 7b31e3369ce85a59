package dev.spiel4j.peft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.Casts;
import dev.spiel4j.engine.EngineArrays;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.optim.AdamW;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Small dense trainable tensors kept on the host (LoRA factors, (IA)3 vectors) with one AdamW each. During a step
 * each becomes a leaf requiring gradients in the step's scope; outside a step, a constant in the caller's manager.
 */
public final class DenseParameters {
    private record Param(long[] shape, float[] values, AdamW adam) {
    }

    private final Map<String, Param> params = new LinkedHashMap<>();
    private final Map<String, NDArray> leaves = new LinkedHashMap<>();
    private final MethodSpec spec;
    private NDManager scope;

    public DenseParameters(MethodSpec spec) {
        this.spec = spec;
    }

    public void add(String name, long[] shape, float[] initial) {
        if (HostTensor.numel(shape) != initial.length) {
            throw new IllegalArgumentException(name + ": " + initial.length + " values for shape "
                    + java.util.Arrays.toString(shape));
        }
        params.put(name, new Param(shape.clone(), initial.clone(),
                new AdamW(initial.length, spec.beta1(), spec.beta2(), spec.eps(), spec.weightDecay())));
    }

    public boolean inStep() {
        return scope != null;
    }

    public void beginStep(NDManager stepScope) {
        if (scope != null) {
            throw new IllegalStateException("a step is already in progress");
        }
        scope = stepScope;
        for (Map.Entry<String, Param> e : params.entrySet()) {
            NDArray leaf = EngineArrays.of(stepScope, e.getValue().values(), new Shape(e.getValue().shape()));
            leaf.setRequiresGradient(true);
            leaves.put(e.getKey(), leaf);
        }
    }

    /**
     * The parameter as an operand for {@code activations}, in their data type (the values stay float32): the step's
     * leaf, or a constant created in the activations' manager between steps.
     */
    public NDArray get(String name, NDArray activations) {
        NDManager manager = activations.getManager();
        if (scope != null) {
            return Casts.to(leaves.get(name), activations.getDataType(), manager);
        }
        Param p = params.get(name);
        return EngineArrays.of(manager, p.values(), new Shape(p.shape())).toType(activations.getDataType(), false);
    }

    public List<NDArray> gradients() {
        requireStep();
        List<NDArray> out = new ArrayList<>();
        for (NDArray leaf : leaves.values()) {
            out.add(leaf.getGradient());
        }
        return out;
    }

    public void update(float lr, float gradScale) {
        requireStep();
        for (Map.Entry<String, Param> e : params.entrySet()) {
            Param p = e.getValue();
            p.adam().step(p.values(), leaves.get(e.getKey()).getGradient().toFloatArray(), lr, gradScale);
        }
        leaves.clear();
        scope = null;
    }

    /** Ends the step without updating. */
    public void abort() {
        leaves.clear();
        scope = null;
    }

    private void requireStep() {
        if (scope == null) {
            throw new IllegalStateException("no training step in progress");
        }
    }

    public long count() {
        return params.values().stream().mapToLong(p -> p.values().length).sum();
    }

    public long stateBytes() {
        return params.values().stream().mapToLong(p -> p.adam().stateBytes()).sum();
    }

    /** Current values by name. */
    public Map<String, HostTensor> export() {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        params.forEach((name, p) -> out.put(name, HostArrays.f32(name, p.shape(), p.values())));
        return out;
    }

    /** Values plus AdamW state. */
    public Map<String, HostTensor> state() {
        Map<String, HostTensor> out = export();
        params.forEach((name, p) -> {
            out.put(name + ".adamw.m", HostArrays.f32(name + ".adamw.m", p.shape(), p.adam().firstMoments()));
            out.put(name + ".adamw.v", HostArrays.f32(name + ".adamw.v", p.shape(), p.adam().secondMoments()));
            out.put(name + ".adamw.age", HostArrays.i32(name + ".adamw.age", p.adam().ages()));
        });
        return out;
    }

    public void restore(MethodState state) {
        params.forEach((name, p) -> {
            float[] v = HostArrays.floats(state.require(name));
            if (v.length != p.values().length) {
                throw new IllegalArgumentException(name + ": state holds " + v.length + " values, expected "
                        + p.values().length);
            }
            System.arraycopy(v, 0, p.values(), 0, v.length);
            p.adam().restore(HostArrays.floats(state.require(name + ".adamw.m")),
                    HostArrays.floats(state.require(name + ".adamw.v")),
                    HostArrays.ints(state.require(name + ".adamw.age")));
        });
    }
}
