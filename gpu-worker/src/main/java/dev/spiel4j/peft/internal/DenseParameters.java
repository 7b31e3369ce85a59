package dev.spiel4j.peft.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.engine.Casts;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.optim.internal.AdamW;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.MethodState;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Small dense trainable tensors (LoRA factors, (IA)3 vectors) on the engine, trained with AdamW. All of them are
 * slices of one float32 engine array with one AdamW over it, so an update is a handful of engine operations however
 * many tensors there are (one AdamW per tensor would cost a couple of dozen per tensor).
 *
 * <p>During a step each tensor is a leaf requiring gradients in the step's scope: a fresh handle on its slice of the
 * values (shared memory, no copy), so its gradient starts empty every step and goes with the scope; the update writes
 * the values in place. Outside a step, {@link #get} hands out a plain handle on the slice.
 *
 * <p>Tensors are declared with {@link #add} first (in the method's constructor); the engine arrays are made at the
 * first use after that, when the total size is known.
 */
public final class DenseParameters implements AutoCloseable {
    private record Param(int offset, long[] shape) {
        int size() {
            return Math.toIntExact(HostTensor.numel(shape));
        }
    }

    private final Map<String, Param> params = new LinkedHashMap<>();
    private final Map<String, NDArray> leaves = new LinkedHashMap<>();
    private final OptimizerSettings optimizer;
    /** Holds the values, their per-tensor views and the optimizer state. */
    private final NDManager held;
    /** The initial values of the tensors declared so far, until the engine arrays are made. */
    private List<float[]> initial = new ArrayList<>();
    private int total;
    private NDArray values;
    /** Each tensor's slice of {@link #values} in its own shape (views, sharing the memory). */
    private final Map<String, NDArray> views = new LinkedHashMap<>();
    private AdamW adam;
    private NDManager scope;
    /** This step's gradients when they were summed elsewhere ({@link #useGradients}); null when the leaves hold them. */
    private List<NDArray> supplied;

    /** @param manager the model's manager: the engine arrays live in a sub-manager of it until {@link #close()} */
    public DenseParameters(OptimizerSettings optimizer, NDManager manager) {
        this.optimizer = optimizer;
        this.held = manager.newSubManager();
    }

    public void add(String name, long[] shape, float[] initialValues) {
        if (initial == null) {
            throw new IllegalStateException(name + ": parameters are added before the first use");
        }
        if (HostTensor.numel(shape) != initialValues.length) {
            throw new IllegalArgumentException(name + ": " + initialValues.length + " values for shape "
                    + Arrays.toString(shape));
        }
        if (params.containsKey(name)) {
            throw new IllegalArgumentException(name + " was added twice");
        }
        params.put(name, new Param(total, shape.clone()));
        initial.add(initialValues.clone());
        total = Math.addExact(total, initialValues.length);
    }

    /** Makes the engine arrays from the declared tensors, once. */
    private void materialize() {
        if (initial == null) {
            return;
        }
        float[] all = new float[total];
        int at = 0;
        for (float[] part : initial) {
            System.arraycopy(part, 0, all, at, part.length);
            at += part.length;
        }
        initial = null;
        values = EngineArrays.of(held, all);
        for (Map.Entry<String, Param> e : params.entrySet()) {
            Param p = e.getValue();
            try (NDArray slice = values.get(new NDIndex().addSliceDim(p.offset(), p.offset() + p.size()))) {
                views.put(e.getKey(), slice.reshape(new Shape(p.shape())));
            }
        }
        adam = new AdamW(held, new Shape(total), optimizer);
    }

    public boolean inStep() {
        return scope != null;
    }

    public void beginStep(NDManager stepScope) {
        if (scope != null) {
            throw new IllegalStateException("a step is already in progress");
        }
        materialize();
        scope = stepScope;
        for (Map.Entry<String, NDArray> e : views.entrySet()) {
            NDArray leaf = EngineArrays.borrow(e.getValue(), stepScope);
            leaf.setRequiresGradient(true);
            leaves.put(e.getKey(), leaf);
        }
    }

    /**
     * The parameter as an operand for {@code activations}, in their data type (the values stay float32): the step's
     * leaf, or between steps a handle on the values owned by the activations' manager.
     */
    public NDArray get(String name, NDArray activations) {
        NDManager manager = activations.getManager();
        if (scope != null) {
            return Casts.to(leaves.get(name), activations.getDataType(), manager);
        }
        materialize();
        return EngineArrays.borrow(views.get(name), manager).toType(activations.getDataType(), false);
    }

    public List<NDArray> gradients() {
        requireStep();
        if (supplied != null) {
            return supplied;
        }
        List<NDArray> out = new ArrayList<>();
        for (NDArray leaf : leaves.values()) {
            out.add(leaf.getGradient());
        }
        return out;
    }

    /** This step's gradients are {@code summed} (one per parameter, in {@link #gradients()}'s order), not the leaves'. */
    public void useGradients(List<NDArray> summed) {
        requireStep();
        if (summed.size() != leaves.size()) {
            throw new IllegalArgumentException(summed.size() + " gradients for " + leaves.size() + " parameters");
        }
        int i = 0;
        for (Map.Entry<String, NDArray> e : leaves.entrySet()) {
            NDArray g = summed.get(i++);
            if (!g.getShape().equals(e.getValue().getShape())) {
                throw new IllegalArgumentException("gradient of " + e.getKey() + " has shape " + g.getShape()
                        + ", the parameter " + e.getValue().getShape());
            }
        }
        supplied = List.copyOf(summed);
    }

    public void update(float lr, float gradScale) {
        requireStep();
        NDList flat = new NDList();
        for (NDArray g : gradients()) {
            flat.add(g.reshape(-1));
        }
        adam.step(values, NDArrays.concat(flat), lr, gradScale);
        abort();
    }

    /** Ends the step without updating. */
    public void abort() {
        leaves.clear();
        supplied = null;
        scope = null;
    }

    private void requireStep() {
        if (scope == null) {
            throw new IllegalStateException("no training step in progress");
        }
    }

    public long count() {
        return total;
    }

    /** AdamW's state for every value: two float32 moments and an int32 age. */
    public long stateBytes() {
        return 12L * total;
    }

    /** Current values by name (host copies). */
    public Map<String, HostTensor> export() {
        materialize();
        return split("", values.toFloatArray());
    }

    /** Values plus AdamW state, under the names and shapes each tensor has always been saved with. */
    public Map<String, HostTensor> state() {
        Map<String, HostTensor> out = export();
        Map<String, HostTensor> m = split(".adamw.m", adam.firstMoments());
        Map<String, HostTensor> v = split(".adamw.v", adam.secondMoments());
        int[] ages = adam.ages();
        params.forEach((name, p) -> {
            out.put(name + ".adamw.m", m.get(name + ".adamw.m"));
            out.put(name + ".adamw.v", v.get(name + ".adamw.v"));
            out.put(name + ".adamw.age", HostArrays.i32(name + ".adamw.age",
                    Arrays.copyOfRange(ages, p.offset(), p.offset() + p.size())));
        });
        return out;
    }

    /** {@code all} cut into the tensors, named {@code name + suffix}. */
    private Map<String, HostTensor> split(String suffix, float[] all) {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        params.forEach((name, p) -> out.put(name + suffix, HostArrays.f32(name + suffix, p.shape(),
                Arrays.copyOfRange(all, p.offset(), p.offset() + p.size()))));
        return out;
    }

    public void restore(MethodState state) {
        materialize();
        float[] v = new float[total];
        float[] m1 = new float[total];
        float[] m2 = new float[total];
        int[] ages = new int[total];
        params.forEach((name, p) -> {
            gather(name, p, HostArrays.floats(state.require(name)), v);
            gather(name + ".adamw.m", p, HostArrays.floats(state.require(name + ".adamw.m")), m1);
            gather(name + ".adamw.v", p, HostArrays.floats(state.require(name + ".adamw.v")), m2);
            int[] a = HostArrays.ints(state.require(name + ".adamw.age"));
            if (a.length != p.size()) {
                throw new IllegalArgumentException(name + ".adamw.age: state holds " + a.length + " ages, expected "
                        + p.size());
            }
            System.arraycopy(a, 0, ages, p.offset(), a.length);
        });
        EngineArrays.copyInto(values, v);
        adam.restore(m1, m2, ages);
    }

    private static void gather(String name, Param p, float[] part, float[] into) {
        if (part.length != p.size()) {
            throw new IllegalArgumentException(name + ": state holds " + part.length + " values, expected " + p.size());
        }
        System.arraycopy(part, 0, into, p.offset(), part.length);
    }

    /** Releases the engine arrays. */
    @Override
    public void close() {
        held.close();
    }
}
