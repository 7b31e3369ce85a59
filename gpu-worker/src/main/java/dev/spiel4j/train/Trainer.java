package dev.spiel4j.train;

import dev.spiel4j.model.CausalLm;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.spiel4j.data.Batch;
import dev.spiel4j.engine.Casts;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.peft.FineTuningMethod;

import java.util.List;

/**
 * One optimizer step of a {@link FineTuningMethod} on a {@link CausalLm}: for every micro-batch a forward pass, the
 * masked cross-entropy and a backward pass (gradients accumulate), then global-norm clipping and the method's
 * update. The loss is the mean over the loss tokens of the whole step, so k micro-batches give the same gradient as
 * one batch holding all their rows. Each step runs in a sub-manager of the model's manager that is closed at the
 * end, so no native memory outlives the step.
 */
public final class Trainer {
    private final CausalLm model;
    private final FineTuningMethod method;
    private final float maxGradNorm;
    private int step;

    /**
     * @param maxGradNorm clip the global gradient norm to this value; {@code Float.POSITIVE_INFINITY} disables
     * @param completedSteps steps already done (0 for a new run, the saved step when resuming)
     */
    public Trainer(CausalLm model, FineTuningMethod method, float maxGradNorm, int completedSteps) {
        if (!(maxGradNorm > 0)) {
            throw new IllegalArgumentException("max gradient norm must be positive, got " + maxGradNorm);
        }
        if (completedSteps < 0) {
            throw new IllegalArgumentException("completed steps must be >= 0, got " + completedSteps);
        }
        this.model = model;
        this.method = method;
        this.maxGradNorm = maxGradNorm;
        this.step = completedSteps;
    }

    public Trainer(CausalLm model, FineTuningMethod method, float maxGradNorm) {
        this(model, method, maxGradNorm, 0);
    }

    /** Update steps completed so far. */
    public int completedSteps() {
        return step;
    }

    public FineTuningMethod method() {
        return method;
    }

    /** Runs update step {@code completedSteps() + 1} on {@code microBatches} at learning rate {@code lr}. */
    public StepResult step(List<Batch> microBatches, float lr) {
        if (microBatches.isEmpty()) {
            throw new IllegalArgumentException("a step needs at least one micro-batch");
        }
        long tokens = microBatches.stream().mapToLong(Batch::lossTokens).sum();
        if (tokens == 0) {
            throw new IllegalArgumentException("the step's micro-batches have no loss tokens");
        }
        long start = System.nanoTime();
        int t = step + 1;
        double nll = 0;
        double norm;
        boolean reselected;
        try (NDManager scope = model.manager().newSubManager()) {
            method.beginStep(scope, t);
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                for (int i = 0; i < microBatches.size(); i++) {
                    try (NDManager mb = scope.newSubManager()) {
                        NDArray sum = maskedNllSum(mb, microBatches.get(i));
                        gc.backward(sum.div(EngineArrays.scalar(mb, tokens)));
                        method.collectGradients(i == microBatches.size() - 1);
                        nll += sum.getFloat();
                    }
                }
            } catch (RuntimeException e) {
                method.abortStep();
                throw e;
            }
            double sq = 0;
            for (NDArray g : method.gradients()) {
                sq += g.square().sum().getFloat();
            }
            norm = method.otherStatisticsFinite() ? Math.sqrt(sq) : Double.NaN;
            if (Double.isFinite(norm)) {
                float scale = norm > maxGradNorm ? (float) (maxGradNorm / (norm + 1e-6)) : 1f;
                reselected = method.update(t, lr, scale);
            } else {
                // An overflowing or NaN gradient would poison every trained value and optimizer moment for the
                // rest of the run (clipping cannot scale NaN): skip this update (its data is spent, the step number
                // is not) and let the caller see it through StepResult.skipped().
                method.abortStep();
                reselected = false;
            }
        }
        if (Double.isFinite(norm)) {
            step = t;
        }
        return new StepResult(nll / tokens, tokens, norm, (System.nanoTime() - start) / 1e9, reselected);
    }

    /** Mean masked cross-entropy of {@code batches} without training (evaluation), using the method's current values. */
    public double evaluate(List<Batch> batches) {
        double nll = 0;
        long tokens = 0;
        for (Batch b : batches) {
            try (NDManager scope = model.manager().newSubManager()) {
                nll += maskedNllSum(scope, b).getFloat();
                tokens += b.lossTokens();
            }
        }
        if (tokens == 0) {
            throw new IllegalArgumentException("evaluation batches have no loss tokens");
        }
        return nll / tokens;
    }

    /** Sum over the batch's loss tokens of {@code -log p(target)}, as a scalar in {@code scope}. */
    private NDArray maskedNllSum(NDManager scope, Batch b) {
        Shape shape = new Shape(b.size(), b.seqLen());
        NDArray tokens = EngineArrays.of(scope, b.inputs(), shape);
        NDArray mask = EngineArrays.of(scope, b.attentionMask(), shape);
        NDArray logits = model.forward(scope, tokens, mask, method);
        long vocab = logits.getShape().get(2);
        for (long target : b.targets()) {
            if (target < 0 || target >= vocab) {
                throw new IllegalArgumentException("batch " + b.exampleIds() + " has target id " + target
                        + " outside the vocabulary of " + vocab);
            }
        }
        NDArray logp = Casts.to(logits, DataType.FLOAT32).logSoftmax(-1);
        NDArray picked = logp.gather(EngineArrays.of(scope, b.targets(), new Shape(b.size(), b.seqLen(), 1)), -1)
                .reshape(shape);
        return picked.mul(EngineArrays.of(scope, b.lossMask(), shape)).sum().neg();
    }
}
