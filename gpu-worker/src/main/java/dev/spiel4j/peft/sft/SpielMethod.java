package dev.spiel4j.peft.sft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.engine.Casts;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.TargetMatrix;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * SpIEL: a {@link SparseDelta} per targeted matrix, trained with W frozen, whose indices are dropped and regrown on a
 * {@link DropGrowSchedule}. The variant ({@link SpielConfig.Growth}) is two parts: the {@link SlotOptimizer} of the
 * deltas' values and the {@link GrowthCriterion} that says where to grow (SpIEL-AG: AdamW and
 * {@link AccumulatedGradients}; SpIEL-MA: SM3 and its accumulators, {@link GrowthCriterion.MomentumApproximation});
 * the decision itself is made by the pure {@link DropGrowSelector}.
 *
 * <p>A step, top to bottom: {@link #beginStep}; the forward pass through {@link #trainingPass}; per block, as soon as
 * its backward segment is done, {@link #collectGradients} (the deltas' gradient, and what the growth criterion
 * observes); {@link #update}: the optimizer steps every delta, the growth criterion keeps the step's observations,
 * and on a reselection step each delta's slots are dropped and regrown as the selector decides.
 *
 * <p>The deltas' values and indices and the optimizer state are engine arrays in {@link #held}; a step's update runs
 * on the engine (values, merged weights and optimizer state change in place) and only a reselection, an export or
 * the state for a checkpoint copies them to the host.
 *
 * <p>How a step computes {@code dL/dphi} (paper Eq. 6: the gradient of the effective weight {@code W'} at the slots)
 * without autograd keeping a dense copy of every targeted matrix:
 * <ul>
 *   <li>Forward: {@code y = x W'^T}. A float32 base weight the model holds densely is a {@link MergedWeight}: it holds
 *   {@code W + phi} at the slots in place, so autograd keeps only a reference to it. Other bases (NF4, float16) get a
 *   transient float32 {@code W'} per pass, which autograd keeps until its block's backward segment.</li>
 *   <li>A zero probe {@code z} (one stored float, broadcast) is added to y in place; once the backward pass has been
 *   through the layer's block its gradient is {@code dL/dy}.</li>
 *   <li>{@link #collectGradients}, called per block as soon as its backward segment is done: per layer,
 *   {@code dL/dW' = dY^T X} is formed one layer at a time and read at the slots (and, for AG, at the growth
 *   candidates), then dropped; or, where no dense gradient is needed and it is cheaper, the slots' gradient is
 *   computed without it: by the JVM from copies of {@code dY} and {@code X} ({@link HostSlotGradient}) or gathered on
 *   the engine ({@link GatheredGradient}), whichever {@link SlotGradientForm} finds cheapest.</li>
 * </ul>
 * What a step keeps per targeted layer is thus the layer's input and, until its block is done, {@code dL/dy},
 * activations' sizes, instead of a
 * weight's size. The base is restored exactly by {@link #close()}.
 */
public final class SpielMethod implements FineTuningMethod {
    private final SpielConfig config;
    private final DropGrowSchedule schedule;
    private final List<SparseDelta> deltas;
    private final SlotOptimizer optimizer;
    private final GrowthCriterion growth;
    private final Map<String, Integer> slotOf = new LinkedHashMap<>();
    private final MergedWeight[] merged;
    /** The block of each delta's matrix, whose backward segment yields its gradient. */
    private final int[] blockOf;
    /**
     * The method's long-lived engine arrays (the deltas' indices and values, the optimizer's state, the growth
     * statistics): a sub-manager of the model's manager, closed by {@link #close()}.
     */
    private final NDManager held;

    /** Whether a reselection waits for decisions from elsewhere ({@link #deferSelections()}). */
    private boolean deferSelections;
    /** The requests of a deferred reselection, until {@link #applySelection} carries out their decisions. */
    private List<SelectionRequest> pendingSelection = List.of();
    private boolean closed;
    private NDManager stepScope;
    private int step;
    private int lastStep;
    /** This step's gradient of each delta's values, accumulated over micro-batches (in the step's scope). */
    private final NDArray[] grads;
    /** A recorded pass's layer inputs and output probes, by delta, until their block's {@link #collectGradients}. */
    private final Map<Integer, Capture> captures = new LinkedHashMap<>();
    /** The JVM's Appendix E form and its reused copies of a layer's {@code dY^T} and {@code X^T}. */
    private final HostSlotGradient host = new HostSlotGradient();

    private record Capture(NDArray input, NDArray outputProbe) {
    }

    /**
     * The input of the last layer a recorded pass applied, and the handle its capture holds: consecutive layers that
     * read one input (q, k and v; gate and up) share the handle, so the host form copies that input out once.
     */
    private NDArray lastInput;
    private NDArray lastInputDetached;

    /**
     * @param weights the model's dense weights by name ({@code model.layers.0.mlp.up_proj.weight}, ...): float32 ones
     *                of targeted matrices are merged in place (see {@link MergedWeight}); may be empty, then every
     *                target uses a transient {@code W'}
     * @param manager the model's manager: the method's engine arrays live in a sub-manager of it
     */
    public SpielMethod(SpielConfig config, List<TargetMatrix> targets, long modelParameters, int totalSteps,
                          Map<String, NDArray> weights, NDManager manager) {
        this.config = config;
        this.held = manager.newSubManager();
        this.schedule = config.schedule(totalSteps);
        long total = config.budget().total(targets, modelParameters);
        int[] k = Budget.split(total, targets);
        SplittableRandom rng = new SplittableRandom(config.seed());
        List<SparseDelta> list = new ArrayList<>();
        for (int i = 0; i < targets.size(); i++) {
            list.add(SparseDelta.random(targets.get(i), k[i], rng, held));
            slotOf.put(targets.get(i).module(), i);
        }
        this.deltas = Collections.unmodifiableList(list);
        switch (config.growth()) {
            case ACCUMULATED_GRADIENT -> {
                optimizer = new SlotOptimizer.Adam(deltas, config.optimizer(), held);
                growth = new AccumulatedGradients(schedule, deltas, config.candidateFactor(), held);
            }
            case MOMENTUM_APPROXIMATION -> {
                SlotOptimizer.Sm3Slots sm3 = new SlotOptimizer.Sm3Slots(deltas, config.optimizer(), held);
                optimizer = sm3;
                growth = new GrowthCriterion.MomentumApproximation(sm3);
            }
            default -> throw new IllegalArgumentException("no SpIEL variant grows by " + config.growth());
        }
        this.grads = new NDArray[deltas.size()];
        this.merged = new MergedWeight[deltas.size()];
        this.blockOf = targets.stream().mapToInt(t -> ModuleNames.layerOf(t.module())).toArray();
        try {
            for (int i = 0; i < merged.length; i++) {
                SparseDelta d = deltas.get(i);
                NDArray w = weights.get(d.module() + ".weight");
                if (w != null && w.getDataType() == DataType.FLOAT32) {
                    merged[i] = new MergedWeight(d.module(), w, d.slots(), d.valueArray());
                }
            }
        } catch (RuntimeException e) {
            close(); // release the weights taken before the failure
            throw e;
        }
    }

    /** The deltas, in target order (live objects: read-only use). */
    public List<SparseDelta> deltas() {
        return deltas;
    }

    public DropGrowSchedule schedule() {
        return schedule;
    }

    /** The optimizer of the deltas' values (read-only use: its state). */
    public SlotOptimizer optimizer() {
        return optimizer;
    }

    /** Where this variant grows (read-only use: its statistics). */
    public GrowthCriterion growth() {
        return growth;
    }

    @Override
    public String name() {
        return config.name();
    }

    @Override
    public long trainableParameters() {
        return deltas.stream().mapToLong(SparseDelta::size).sum();
    }

    @Override
    public long optimizerStateBytes() {
        return optimizer.stateBytes() + growth.stateBytes();
    }

    @Override
    public boolean otherStatisticsFinite() {
        return growth.observedFinite();
    }

    @Override
    public NDArray apply(String module, NDArray x, NDArray weight) {
        return forward(module, x, weight, false, false);
    }

    @Override
    public LinearLayers trainingPass(int microBatch, boolean recordGradients) {
        requireStep();
        return (module, x, weight) -> forward(module, x, weight, true, recordGradients);
    }

    /**
     * {@code x W'^T}; in a training pass plus a zero probe, whose gradient is {@code dL/dy} where the pass is
     * recorded. A pass that is not recorded adds the probe too: the same float sums, to the last bit (y + 0 turns
     * a -0 into +0), as the recorded pass that recomputes it.
     */
    private NDArray forward(String module, NDArray x, NDArray weight, boolean trainingPass, boolean record) {
        Integer i = slotOf.get(module);
        if (i == null) {
            return LinearLayers.dense(x, weight);
        }
        if (closed) {
            throw new IllegalStateException(name() + " was closed: the model's weights are the base weights again");
        }
        DataType type = x.getDataType();
        NDArray x32 = Casts.to(x, DataType.FLOAT32);
        NDArray w;
        if (merged[i] != null) {
            if (merged[i].weight() != weight) {
                throw new IllegalStateException(module + ": this SpIEL method was created for another model's weights");
            }
            w = weight;
        } else {
            // transient W' in the activations' manager, closed with them
            w = deltas.get(i).effectiveWeight(x.getManager(), weight);
        }
        NDArray y = LinearLayers.dense(x32, w);
        if (trainingPass) {
            NDArray probe = x.getManager().zeros(new Shape(1)).broadcast(y.getShape());
            if (record) {
                if (captures.containsKey(i)) {
                    throw new IllegalStateException(module + " was applied twice in one recorded pass");
                }
                probe.setRequiresGradient(true);
                if (x32 != lastInput) {
                    lastInput = x32;
                    lastInputDetached = x32.stopGradient();
                }
                captures.put(i, new Capture(lastInputDetached, probe));
            }
            // in place: y is no input of the linear's backward, and an out-of-place sum would keep a second
            // output-sized array per targeted layer alive until the backward pass
            y = y.addi(probe);
        }
        return Casts.to(y, type);
    }

    @Override
    public void collectGradients(int block, int microBatch) {
        requireStep();
        for (Iterator<Map.Entry<Integer, Capture>> it = captures.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Integer, Capture> e = it.next();
            int i = e.getKey();
            if (blockOf[i] != block) {
                continue;
            }
            it.remove();
            SparseDelta d = deltas.get(i);
            TargetMatrix m = d.matrix();
            NDArray input = e.getValue().input();
            NDArray outGrad = e.getValue().outputProbe().getGradient();
            try (NDManager layer = stepScope.newSubManager()) {
                NDArray dy = outGrad.reshape(-1, m.rows());
                dy.attach(layer);
                NDArray x2 = input.reshape(-1, m.cols());
                x2.attach(layer);
                NDArray slots = d.slots();
                NDArray g = switch (SlotGradientForm.cheapest(d.size(), m, dy.getShape().get(0), dy.getDevice(),
                        growth.needsDenseGradient())) {
                    case HOST -> host.atSlots(dy, x2, input, slots, m, layer);
                    case GATHERED -> GatheredGradient.atSlots(dy, x2, slots, m);
                    case DENSE -> {
                        // one layer's dense dL/dW' at a time: its scope closes before the next layer's is formed
                        NDArray dense = dy.transpose().matMul(x2).reshape(-1);
                        if (growth.needsDenseGradient()) {
                            growth.observe(i, dense, microBatch, stepScope);
                        }
                        yield dense.take(slots);
                    }
                };
                if (grads[i] == null) {
                    grads[i] = g;
                    g.attach(stepScope);
                } else {
                    grads[i].addi(g);
                }
            }
        }
    }

    @Override
    public void beginStep(NDManager scope, int t) {
        if (stepScope != null) {
            throw new IllegalStateException("step " + step + " was begun but never updated");
        }
        requireNoPendingSelection("begin step " + t);
        if (t != lastStep + 1) {
            throw new IllegalArgumentException("step " + t + " does not follow step " + lastStep);
        }
        stepScope = scope;
        step = t;
        lastInput = null;
        lastInputDetached = null;
        Arrays.fill(grads, null);
        growth.beginStep(t);
    }

    @Override
    public List<NDArray> gradients() {
        requireStep();
        if (!captures.isEmpty()) {
            throw new IllegalStateException("the gradients of " + captures.size() + " layers were never collected");
        }
        for (int i = 0; i < grads.length; i++) {
            if (grads[i] == null) {
                throw new IllegalStateException(deltas.get(i).module() + " took no part in this step's forward pass");
            }
        }
        return List.of(grads);
    }

    @Override
    public void useGradients(List<NDArray> summed) {
        requireStep();
        if (summed.size() != deltas.size()) {
            throw new IllegalArgumentException(summed.size() + " gradients for " + deltas.size() + " deltas");
        }
        for (int i = 0; i < grads.length; i++) {
            if (summed.get(i).size() != deltas.get(i).size()) {
                throw new IllegalArgumentException("gradient of " + deltas.get(i).module() + " has "
                        + summed.get(i).size() + " values for " + deltas.get(i).size() + " slots");
            }
            grads[i] = summed.get(i);
        }
        captures.clear();
    }

    @Override
    public boolean choosesFromFirstMicroBatch(int t) {
        return growth.choosesFromFirstMicroBatch(t);
    }

    @Override
    public List<long[]> choices() {
        requireStep();
        return growth.choices();
    }

    @Override
    public void adoptChoices(List<long[]> choices) {
        requireStep();
        growth.adoptChoices(choices, stepScope);
    }

    @Override
    public List<float[]> statistics() {
        requireStep();
        return growth.statistics();
    }

    @Override
    public void useStatistics(List<float[]> summed, List<long[]> choices) {
        requireStep();
        growth.useStatistics(summed, choices, stepScope);
    }

    @Override
    public boolean update(int t, float lr, float gradScale) {
        requireStep();
        if (t != step) {
            throw new IllegalArgumentException("update for step " + t + " inside step " + step);
        }
        List<NDArray> g = gradients();
        for (int i = 0; i < deltas.size(); i++) {
            optimizer.step(i, deltas.get(i), g.get(i), lr, gradScale);
        }
        growth.endStep(true);
        boolean reselect = schedule.isReselection(t);
        List<SelectionRequest> deferred = new ArrayList<>();
        for (int i = 0; i < deltas.size(); i++) {
            SparseDelta d = deltas.get(i);
            if (!reselect) {
                if (merged[i] != null) {
                    merged[i].write(d.valueArray());
                }
            } else if (deferSelections) {
                deferred.add(growth.request(i, d, t, schedule.replacements(d.size(), t)));
            } else {
                // one matrix's request at a time: the requests' host copies of slots and statistics never all live
                replaceSlots(i, DropGrowSelector.decide(growth.request(i, d, t, schedule.replacements(d.size(), t))));
            }
        }
        pendingSelection = List.copyOf(deferred);
        endStep();
        lastStep = t;
        return reselect;
    }

    /**
     * From now on a reselection waits for decisions made elsewhere (a selector actor, a coordinator): the update of
     * a reselection step leaves one request per delta in {@link #pendingSelection()}, and {@link #applySelection}
     * carries out the decisions, which must be {@link DropGrowSelector#decide}'s for those requests. Until then no
     * step begins and no state is saved. By default the method decides itself, inside the update.
     */
    public void deferSelections() {
        deferSelections = true;
    }

    /** The requests of the last reselection, one per delta in order, while their decisions are outstanding. */
    public List<SelectionRequest> pendingSelection() {
        return pendingSelection;
    }

    /**
     * Carries out the decisions for {@link #pendingSelection()}, one per delta in order: the slots move (the merged
     * weights with them) and the optimizer is seeded.
     *
     * @return what the reselection did
     */
    public Reselection applySelection(List<SelectionDecision> decisions) {
        if (pendingSelection.isEmpty()) {
            throw new IllegalStateException("no reselection is waiting for decisions");
        }
        if (decisions.size() != deltas.size()) {
            throw new IllegalArgumentException(decisions.size() + " decisions for " + deltas.size() + " deltas");
        }
        List<Reselection.MatrixChange> changes = new ArrayList<>();
        for (int i = 0; i < deltas.size(); i++) {
            replaceSlots(i, decisions.get(i));
            SparseDelta d = deltas.get(i);
            changes.add(new Reselection.MatrixChange(d.module(), decisions.get(i).size(), d.size(),
                    optimizer.ages(i)));
        }
        pendingSelection = List.of();
        return new Reselection(lastStep, schedule.fraction(lastStep), changes);
    }

    /**
     * Delta {@code i}'s slots move as {@code decision} says (the merged weight with them; the slots that stay get
     * {@code W + values} written again) and its optimizer is seeded.
     */
    private void replaceSlots(int i, SelectionDecision decision) {
        SparseDelta d = deltas.get(i);
        reslot(i, () -> d.replace(decision));
        optimizer.replaced(i, decision);
    }

    private void requireNoPendingSelection(String action) {
        if (!pendingSelection.isEmpty()) {
            throw new IllegalStateException("cannot " + action + ": the reselection of step " + lastStep
                    + " waits for its decisions");
        }
    }

    @Override
    public void abortStep() {
        endStep();
        growth.endStep(false);
    }

    private void endStep() {
        captures.clear();
        Arrays.fill(grads, null);
        stepScope = null;
    }

    /**
     * Changes delta {@code i}'s indices with {@code change} and brings its merged weight along: the old slots get W
     * back before the delta lets go of them, the new ones then hold {@code W + values}.
     */
    private void reslot(int i, Runnable change) {
        if (merged[i] == null) {
            change.run();
            return;
        }
        merged[i].moveTo(null, null);
        try {
            change.run(); // validates before it changes anything
        } finally {
            merged[i].moveTo(deltas.get(i).slots(), deltas.get(i).valueArray());
        }
    }

    /**
     * Puts the base values of every merged weight back (the model is the base model again) and releases the deltas
     * and the optimizer state.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            for (MergedWeight m : merged) {
                if (m != null) {
                    m.restore();
                }
            }
        } finally {
            held.close();
        }
    }

    private void requireStep() {
        if (stepScope == null) {
            throw new IllegalStateException("no training step in progress");
        }
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

    /**
     * Starts from trained deltas instead of random indices and zero values (before the first step; the optimizer's
     * state stays fresh): each of {@code start}'s modules must be one of the targets, with as many deltas as the
     * budget gives it.
     *
     * @throws IllegalArgumentException naming the module that does not fit
     */
    public void initialize(List<DeltaTensor> start) {
        if (lastStep != 0 || stepScope != null) {
            throw new IllegalStateException("deltas can be set only before the first step; this method is at step "
                    + lastStep);
        }
        Map<String, DeltaTensor> byModule = new LinkedHashMap<>();
        start.forEach(d -> byModule.put(d.module(), d));
        if (!slotOf.keySet().containsAll(byModule.keySet())) {
            List<String> unknown = byModule.keySet().stream().filter(m -> !slotOf.containsKey(m)).toList();
            throw new IllegalArgumentException("modules " + unknown + " are not among the targets of this "
                    + name() + " run");
        }
        for (int i = 0; i < deltas.size(); i++) {
            SparseDelta d = deltas.get(i);
            DeltaTensor from = byModule.get(d.module());
            if (from == null || from.size() != d.size()) {
                throw new IllegalArgumentException(d.module() + ": the budget gives it " + d.size() + " deltas but the"
                        + " starting fine-tuning has " + (from == null ? "none" : from.size()));
            }
        }
        for (int i = 0; i < deltas.size(); i++) {
            SparseDelta d = deltas.get(i);
            DeltaTensor from = byModule.get(d.module());
            reslot(i, () -> d.restore(from.indices(), from.values()));
        }
    }

    @Override
    public MethodState state() {
        if (stepScope != null) {
            throw new IllegalStateException("cannot save state in the middle of step " + step);
        }
        requireNoPendingSelection("save state");
        Map<String, HostTensor> out = new LinkedHashMap<>(exportTensors());
        optimizer.save(deltas, out);
        growth.save(deltas, out);
        return new MethodState(name(), lastStep, out);
    }

    @Override
    public void restore(MethodState state) {
        if (!state.method().equals(name())) {
            throw new IllegalArgumentException("cannot restore " + state.method() + " state into " + name());
        }
        for (int i = 0; i < deltas.size(); i++) {
            SparseDelta d = deltas.get(i);
            long[] indices = HostArrays.longs(state.require(d.module() + ".sft_delta.indices"));
            float[] values = HostArrays.floats(state.require(d.module() + ".sft_delta.values"));
            reslot(i, () -> d.restore(indices, values));
        }
        optimizer.restore(deltas, state);
        growth.restore(deltas, state);
        lastStep = state.step();
        // a saved state is taken after its step's reselection was carried out: a reselection still waiting for its
        // decisions here (a replica re-synced while its coordinator restarted) belongs to the state replaced
        pendingSelection = List.of();
    }
}
