package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.peft.MethodSpec;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.TargetMatrix;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * SpIEL: a {@link SparseDelta} per targeted matrix, trained through {@code W' = W + scatter(indices, phi)} with W
 * frozen, whose indices are dropped and regrown on a {@link DropGrowSchedule}. Subclasses supply the optimizer and
 * the growth criterion ({@link SpielAg}: AdamW and accumulated gradients; {@link SpielMa}: SM3 and its
 * accumulators); the decision itself is made by the pure {@link DropGrowSelector}.
 */
public abstract class SpielMethod implements FineTuningMethod {
    protected final MethodSpec spec;
    protected final DropGrowSchedule schedule;
    protected final List<SparseDelta> deltas;
    private final Map<String, Integer> slotOf = new LinkedHashMap<>();

    private Function<SelectionRequest, SelectionDecision> selector = DropGrowSelector::decide;
    private NDManager stepScope;
    private int step;
    private int lastStep;
    private final Map<String, NDArray> phiLeaves = new LinkedHashMap<>();

    protected SpielMethod(MethodSpec spec, List<TargetMatrix> targets, long modelParameters, int totalSteps) {
        this.spec = spec;
        this.schedule = spec.schedule(totalSteps);
        long total = spec.budget().total(targets, modelParameters);
        int[] k = Budget.split(total, targets);
        SplittableRandom rng = new SplittableRandom(spec.seed());
        List<SparseDelta> list = new ArrayList<>();
        for (int i = 0; i < targets.size(); i++) {
            list.add(SparseDelta.random(targets.get(i), k[i], rng));
            slotOf.put(targets.get(i).module(), i);
        }
        this.deltas = Collections.unmodifiableList(list);
    }

    /** The deltas, in target order (live objects: read-only use). */
    public List<SparseDelta> deltas() {
        return deltas;
    }

    public DropGrowSchedule schedule() {
        return schedule;
    }

    @Override
    public String name() {
        return spec.method().cliName();
    }

    @Override
    public long trainableParameters() {
        return deltas.stream().mapToLong(SparseDelta::size).sum();
    }

    @Override
    public NDArray apply(String module, NDArray x, NDArray weight) {
        Integer i = slotOf.get(module);
        if (i == null) {
            return LinearLayers.dense(x, weight);
        }
        SparseDelta d = deltas.get(i);
        boolean training = stepScope != null;
        // Transients (the dense W') go to the activations' manager, which the trainer closes after each
        // micro-batch; only the leaves live in the step scope.
        NDManager m = x.getManager();
        NDArray phi = training ? phiLeaves.get(module) : m.create(d.values());
        NDArray w = d.effectiveWeight(m, weight, phi, training ? probe(i, m) : null);
        DataType type = x.getDataType();
        NDArray y = LinearLayers.dense(type == DataType.FLOAT32 ? x : x.toType(DataType.FLOAT32, false), w);
        return type == DataType.FLOAT32 ? y : y.toType(type, false);
    }

    @Override
    public void beginStep(NDManager scope, int t) {
        if (stepScope != null) {
            throw new IllegalStateException("step " + step + " was begun but never updated");
        }
        if (t != lastStep + 1) {
            throw new IllegalArgumentException("step " + t + " does not follow step " + lastStep);
        }
        stepScope = scope;
        step = t;
        for (SparseDelta d : deltas) {
            NDArray phi = scope.create(d.values());
            phi.setRequiresGradient(true);
            phiLeaves.put(d.module(), phi);
        }
        onBeginStep(scope, t);
    }

    @Override
    public List<NDArray> gradients() {
        requireStep();
        return phiLeaves.values().stream().map(NDArray::getGradient).toList();
    }

    @Override
    public boolean update(int t, float lr, float gradScale) {
        requireStep();
        if (t != step) {
            throw new IllegalArgumentException("update for step " + t + " inside step " + step);
        }
        for (int i = 0; i < deltas.size(); i++) {
            SparseDelta d = deltas.get(i);
            float[] g = phiLeaves.get(d.module()).getGradient().toFloatArray();
            optimize(i, d.mutableValues(), g, lr, gradScale);
        }
        afterOptimize(t);
        boolean reselect = schedule.isReselection(t);
        if (reselect) {
            for (int i = 0; i < deltas.size(); i++) {
                SparseDelta d = deltas.get(i);
                SelectionDecision decision = selector.apply(selectionRequest(i, t, schedule.replacements(d.size(), t)));
                d.replace(decision);
                onReplaced(i, decision);
            }
        }
        phiLeaves.clear();
        stepScope = null;
        lastStep = t;
        return reselect;
    }

    @Override
    public void abortStep() {
        phiLeaves.clear();
        stepScope = null;
        onAbort();
    }

    /** Hook: drop the step's probes. */
    protected void onAbort() {
    }

    private void requireStep() {
        if (stepScope == null) {
            throw new IllegalStateException("no training step in progress");
        }
    }

    /** Hook: the step's probes are created here. */
    protected void onBeginStep(NDManager scope, int t) {
    }

    /** Hook: an extra flat {@code [rows * cols]} term added to delta {@code i}'s effective weight, or null. */
    protected NDArray probe(int i, NDManager scope) {
        return null;
    }

    /** Optimizer update of delta {@code i}'s values in place. */
    protected abstract void optimize(int i, float[] values, float[] grads, float lr, float gradScale);

    /** Hook after every delta was updated (statistics collection). */
    protected void afterOptimize(int t) {
    }

    /** The inputs of delta {@code i}'s reselection at step {@code t}, replacing up to {@code n} slots. */
    protected abstract SelectionRequest selectionRequest(int i, int t, int n);

    /**
     * Who turns a {@link SelectionRequest} into a {@link SelectionDecision}: by default the local pure
     * {@link DropGrowSelector#decide}; a service can route requests to a selector elsewhere, which must answer with
     * the same pure function's result.
     */
    public void setSelector(Function<SelectionRequest, SelectionDecision> selector) {
        this.selector = java.util.Objects.requireNonNull(selector, "selector");
    }

    /** Hook after delta {@code i}'s slots were replaced (optimizer seeding). */
    protected void onReplaced(int i, SelectionDecision decision) {
    }

    @Override
    public List<DeltaTensor> exportDeltas() {
        return deltas.stream().map(SparseDelta::toDeltaTensor).toList();
    }

    @Override
    public Map<String, HostTensor> exportTensors() {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (SparseDelta d : deltas) {
            out.put(d.module() + ".sft_delta.indices", HostArrays.i64(d.module() + ".sft_delta.indices", d.indices()));
            out.put(d.module() + ".sft_delta.values",
                    HostArrays.f32(d.module() + ".sft_delta.values", new long[]{d.size()}, d.values()));
        }
        return out;
    }

    @Override
    public MethodState state() {
        if (stepScope != null) {
            throw new IllegalStateException("cannot save state in the middle of step " + step);
        }
        Map<String, HostTensor> out = new LinkedHashMap<>(exportTensors());
        saveExtra(out);
        return new MethodState(name(), lastStep, out);
    }

    @Override
    public void restore(MethodState state) {
        if (!state.method().equals(name())) {
            throw new IllegalArgumentException("cannot restore " + state.method() + " state into " + name());
        }
        for (int i = 0; i < deltas.size(); i++) {
            SparseDelta d = deltas.get(i);
            d.restore(HostArrays.longs(state.require(d.module() + ".sft_delta.indices")),
                    HostArrays.floats(state.require(d.module() + ".sft_delta.values")));
        }
        restoreExtra(state);
        lastStep = state.step();
    }

    /** Adds optimizer/selector state tensors. */
    protected abstract void saveExtra(Map<String, HostTensor> out);

    /** Restores what {@link #saveExtra} wrote. */
    protected abstract void restoreExtra(MethodState state);
}
