package dev.spiel4j.train;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.LlamaModel;

import java.util.function.Function;

/**
 * A base model uploaded onto a device: a root {@link NDManager} there and the {@link LlamaModel} in it, closed
 * together (the model, then the manager). Every model the engine runs is set up here: a {@link TrainingSession}'s,
 * and the model-only commands' ({@code generate}, {@code score}).
 */
public final class EngineModel implements AutoCloseable {
    private final NDManager root;
    private final LlamaModel model;
    private boolean closed;

    private EngineModel(NDManager root, LlamaModel model) {
        this.root = root;
        this.model = model;
    }

    /** Uploads {@code loaded}'s weights as {@code placement} says. */
    public static EngineModel load(LoadedModel loaded, ModelPlacement placement) {
        return build(placement, root -> LlamaModel.create(loaded, root, placement.computeType(), placement.storage()));
    }

    /** A model of {@code config}'s shape with seeded random weights (benchmarks of shapes without a checkpoint). */
    public static EngineModel random(LlamaConfig config, long seed, ModelPlacement placement) {
        return build(placement, root -> LlamaModel.random(config, seed, root, placement.computeType(),
                placement.storage()));
    }

    /** The root manager on the device, closed again when the model cannot be built in it. */
    private static EngineModel build(ModelPlacement placement, Function<NDManager, LlamaModel> create) {
        NDManager root = NDManager.newBaseManager(placement.device());
        try {
            return new EngineModel(root, create.apply(root));
        } catch (RuntimeException e) {
            root.close();
            throw e;
        }
    }

    public LlamaModel model() {
        return model;
    }

    public Device device() {
        return root.getDevice();
    }

    /** Closes the model, then its manager; closing again does nothing. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            model.close();
        } finally {
            root.close();
        }
    }
}
