package dev.spiel4j.peft.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodState;

import java.util.List;
import java.util.Map;

/**
 * Base of the dense-adapter baselines (LoRA, (IA)3): a fixed set of small dense tensors on the engine, trained with AdamW through
 * {@link DenseParameters}. Subclasses create the tensors and say how a linear layer uses them; the step protocol,
 * export and resume state are the same for all of them and live here.
 */
public abstract class AdapterMethod implements FineTuningMethod {
    private final String name;
    protected final DenseParameters params;
    private int lastStep;

    /** @param manager the model's manager (the parameters live in a sub-manager of it until {@link #close()}) */
    protected AdapterMethod(String name, OptimizerSettings optimizer, NDManager manager) {
        this.name = name;
        this.params = new DenseParameters(optimizer, manager);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long trainableParameters() {
        return params.count();
    }

    @Override
    public long optimizerStateBytes() {
        return params.stateBytes();
    }

    @Override
    public void beginStep(NDManager scope, int step) {
        params.beginStep(scope);
    }

    @Override
    public List<NDArray> gradients() {
        return params.gradients();
    }

    @Override
    public void useGradients(List<NDArray> summed) {
        params.useGradients(summed);
    }

    @Override
    public boolean update(int step, float lr, float gradScale) {
        params.update(lr, gradScale);
        lastStep = step;
        return false;
    }

    @Override
    public void abortStep() {
        params.abort();
    }

    @Override
    public Map<String, HostTensor> exportTensors() {
        return params.export();
    }

    @Override
    public MethodState state() {
        return new MethodState(name(), lastStep, params.state());
    }

    @Override
    public void restore(MethodState state) {
        params.restore(state);
        lastStep = state.step();
    }

    /** Releases the parameters' engine arrays and optimizer state. */
    @Override
    public void close() {
        params.close();
    }
}
