package dev.spiel4j.train;

import dev.spiel4j.model.CausalLm;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.spiel4j.data.Batch;
import dev.spiel4j.engine.Casts;
import dev.spiel4j.engine.EngineArrays;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.model.ForwardSegments;
import dev.spiel4j.model.LinearLayers;
import dev.spiel4j.model.ModuleNames;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One optimizer step of a {@link FineTuningMethod} on a {@link CausalLm}: for every micro-batch a forward pass, the
 * masked cross-entropy and a backward pass (gradients accumulate) run as the {@link BackwardPass} says, then
 * global-norm clipping and the method's update. The loss is the mean over the loss tokens of the whole step, so k
 * micro-batches give the same gradient as one batch holding all their rows. Each step runs in a sub-manager of the
 * model's manager that is closed at the end, and each block of a block-wise pass in its own sub-manager that is
 * closed as soon as its backward segment is done, so no native memory outlives its use.
 */
public final class Trainer {
    /** Logits per chunk of positions in a block-wise pass's head (16 MiB of float32), see {@link #headBackward}. */
    private static final long HEAD_CHUNK_LOGITS = 1 << 22;

    private final CausalLm model;
    private final FineTuningMethod method;
    private final float maxGradNorm;
    private final BackwardPass backward;
    private final long headChunkLogits;
    private int step;

    /**
     * @param maxGradNorm    clip the global gradient norm to this value; {@code Float.POSITIVE_INFINITY} disables
     * @param completedSteps steps already done (0 for a new run, the saved step when resuming)
     * @param backward       how the backward pass runs (the result is the same; the memory is not)
     */
    public Trainer(CausalLm model, FineTuningMethod method, float maxGradNorm, int completedSteps,
                   BackwardPass backward) {
        this(model, method, maxGradNorm, completedSteps, backward, HEAD_CHUNK_LOGITS);
    }

    /** As the public constructor, with another chunk size of the head (tests make it small to exercise chunks). */
    Trainer(CausalLm model, FineTuningMethod method, float maxGradNorm, int completedSteps, BackwardPass backward,
            long headChunkLogits) {
        if (!(maxGradNorm > 0)) {
            throw new IllegalArgumentException("max gradient norm must be positive, got " + maxGradNorm);
        }
        if (completedSteps < 0) {
            throw new IllegalArgumentException("completed steps must be >= 0, got " + completedSteps);
        }
        this.model = model;
        this.method = method;
        this.maxGradNorm = maxGradNorm;
        this.backward = java.util.Objects.requireNonNull(backward, "backward pass");
        this.step = completedSteps;
        this.headChunkLogits = headChunkLogits;
    }

    /** Block-wise backward passes. */
    public Trainer(CausalLm model, FineTuningMethod method, float maxGradNorm, int completedSteps) {
        this(model, method, maxGradNorm, completedSteps, BackwardPass.BLOCK_WISE);
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
        try (NDManager scope = model.manager().newSubManager()) {
            method.beginStep(scope, t);
            double nll = 0;
            try {
                for (int i = 0; i < microBatches.size(); i++) {
                    try (NDManager mb = scope.newSubManager()) {
                        nll += microBatch(mb, microBatches.get(i), i, tokens);
                    }
                }
            } catch (RuntimeException e) {
                method.abortStep();
                throw e;
            }
            return finishStep(t, nll, tokens, lr, start);
        }
    }

    /**
     * The gradient of micro-batch {@code index} of the next update step alone, its loss divided by the step's
     * {@code stepTokens}, as a host copy; the method's values and state do not change. A data-parallel worker computes
     * the micro-batches it is given this way, and every replica then applies the sum of all parts
     * ({@link SummedGradient#of}) with {@link #applyStep}.
     *
     * @param choices what micro-batch 0 of the step chose ({@link MicroBatchGradient#choices()}), where
     *                {@link #choosesFromFirstMicroBatch} says the step has such choices and {@code index} is not 0;
     *                else empty
     */
    public MicroBatchGradient gradientOf(Batch batch, int index, long stepTokens, List<long[]> choices) {
        if (stepTokens <= 0) {
            throw new IllegalArgumentException("the step's loss tokens must be positive, got " + stepTokens);
        }
        try (NDManager scope = model.manager().newSubManager()) {
            method.beginStep(scope, step + 1);
            try {
                if (index > 0) {
                    method.adoptChoices(choices);
                }
                double nll;
                try (NDManager mb = scope.newSubManager()) {
                    nll = microBatch(mb, batch, index, stepTokens);
                }
                List<long[]> shapes = new ArrayList<>();
                List<float[]> values = new ArrayList<>();
                for (NDArray g : method.gradients()) {
                    shapes.add(g.getShape().getShape());
                    values.add(Casts.to(g, DataType.FLOAT32).toFloatArray());
                }
                return new MicroBatchGradient(index, nll, batch.lossTokens(), shapes, values, method.statistics(),
                        index == 0 ? method.choices() : List.of());
            } finally {
                method.abortStep();
            }
        }
    }

    /** Whether the next step's micro-batch 0 must be computed before the others (see {@link #gradientOf}). */
    public boolean choosesFromFirstMicroBatch() {
        return method.choosesFromFirstMicroBatch(step + 1);
    }

    /**
     * Runs update step {@code completedSteps() + 1} from the sum of its micro-batches' gradients computed elsewhere
     * ({@link #gradientOf}, {@link SummedGradient#of}); the result, values and optimizer state are bit for bit those
     * of {@link #step} on the same micro-batches.
     */
    public StepResult applyStep(SummedGradient sum, float lr) {
        long start = System.nanoTime();
        int t = step + 1;
        try (NDManager scope = model.manager().newSubManager()) {
            method.beginStep(scope, t);
            try {
                List<NDArray> summed = new ArrayList<>();
                for (int j = 0; j < sum.values().size(); j++) {
                    summed.add(EngineArrays.of(scope, sum.values().get(j), new Shape(sum.shapes().get(j))));
                }
                method.useGradients(summed);
                method.useStatistics(sum.statistics(), sum.choices());
            } catch (RuntimeException e) {
                method.abortStep();
                throw e;
            }
            return finishStep(t, sum.nllSum(), sum.lossTokens(), lr, start);
        }
    }

    /**
     * Ends step {@code t} whose gradients the method holds: global-norm clipping and the update, or the update skipped
     * where a gradient is not finite.
     */
    private StepResult finishStep(int t, double nll, long tokens, float lr, long start) {
        double sq = 0;
        for (NDArray g : method.gradients()) {
            sq += g.square().sum().getFloat();
        }
        double norm = method.otherStatisticsFinite() ? Math.sqrt(sq) : Double.NaN;
        boolean reselected;
        if (Double.isFinite(norm)) {
            float scale = norm > maxGradNorm ? (float) (maxGradNorm / (norm + 1e-6)) : 1f;
            reselected = method.update(t, lr, scale);
            step = t;
        } else {
            // An overflowing or NaN gradient would poison every trained value and optimizer moment for the
            // rest of the run (clipping cannot scale NaN): skip this update (its data is spent, the step number
            // is not) and let the caller see it through StepResult.skipped().
            method.abortStep();
            reselected = false;
        }
        return new StepResult(nll / tokens, tokens, norm, (System.nanoTime() - start) / 1e9, reselected);
    }

    /**
     * The forward and backward passes of micro-batch {@code index}, with the loss divided by the step's
     * {@code stepTokens}; returns the micro-batch's summed negative log-likelihood.
     */
    private double microBatch(NDManager mb, Batch batch, int index, long stepTokens) {
        ForwardSegments segments = segments(mb, batch);
        if (backward == BackwardPass.WHOLE_GRAPH) {
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray sum = maskedNllSum(batch, segments.logits(method.trainingPass(index, true)));
                gc.backward(sum.div(EngineArrays.scalar(mb, stepTokens)));
                for (int block = 0; block < segments.blocks(); block++) {
                    method.collectGradients(block, index);
                }
                return sum.getFloat();
            }
        }
        boolean checkpointed = backward == BackwardPass.CHECKPOINTED;
        int blocks = segments.blocks();
        // inputs[l]: block l's input, a leaf of its own scope; inputs[blocks] is the head's input
        NDArray[] inputs = new NDArray[blocks + 1];
        NDArray[] outputs = new NDArray[blocks];
        NDManager[] scopes = new NDManager[blocks];
        try {
            if (checkpointed) {
                // outside the gradient collector nothing is recorded: only the blocks' inputs stay
                NDArray x = segments.embed();
                LinearLayers plain = method.trainingPass(index, false);
                for (int l = 0; l < blocks; l++) {
                    inputs[l] = x;
                    try (NDManager activations = mb.newSubManager()) {
                        x = segments.block(l, view(x, activations), plain);
                        x.attach(mb);
                    }
                }
                inputs[blocks] = x;
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                LinearLayers linears = method.trainingPass(index, true);
                NDArray embedded = null;
                if (!checkpointed) {
                    embedded = segments.embed();
                    NDArray x = embedded;
                    for (int l = 0; l < blocks; l++) {
                        scopes[l] = mb.newSubManager();
                        inputs[l] = leaf(x, scopes[l]);
                        x = outputs[l] = segments.block(l, inputs[l], linears);
                    }
                    inputs[blocks] = x;
                }
                // gradientScope holds only the gradient of the next block's output: each block's own scope closes
                // as soon as its backward segment is done, so at most one block's intermediates are alive while
                // checkpointed blocks are recomputed
                NDManager gradientScope = mb.newSubManager();
                NDArray[] headGradient = new NDArray[1];
                double nll = headBackward(gc, segments, batch, inputs[blocks], stepTokens, gradientScope, headGradient);
                NDArray outputGradient = headGradient[0];
                for (int l = blocks - 1; l >= 0; l--) {
                    if (checkpointed) {
                        scopes[l] = mb.newSubManager();
                        inputs[l] = leaf(inputs[l], scopes[l]);
                        outputs[l] = segments.block(l, inputs[l], linears);
                    }
                    // d(sum(out * g))/d(out) = 1 * g: the block receives exactly the gradient of its output
                    gc.backward(outputs[l].mul(outputGradient).sum());
                    method.collectGradients(l, index);
                    gradientScope.close();
                    gradientScope = mb.newSubManager();
                    outputGradient = inputs[l].getGradient();
                    outputGradient.attach(gradientScope);
                    scopes[l].close();
                }
                // the embeddings need a backward pass only where they are trained (full fine-tuning)
                NDArray table = model.weights().get(ModuleNames.EMBED);
                if (table != null && table.hasGradient()) {
                    if (embedded == null) {
                        embedded = segments.embed();
                    }
                    gc.backward(embedded.mul(outputGradient).sum());
                }
                return nll;
            }
        } finally {
            for (NDManager s : scopes) {
                if (s != null) {
                    s.close();
                }
            }
        }
    }

    /**
     * The head's forward and backward passes on the top block's output {@code top}, in chunks of positions (the
     * batch's rows one after the other) when the head's weights are frozen: the logits of a 32k vocabulary are the
     * largest arrays of a step (4 bytes x tokens x vocabulary, several times over for the log-softmax and the
     * gradients; 260 MB for one 512-token row), and with frozen head weights each position's gradient depends on that
     * position alone, so the chunks change no bit of it. The loss is summed once over all positions' terms, as the
     * whole-graph pass sums it. Where the head is trained (full fine-tuning) its weights' gradients are sums over all
     * positions, which chunks would reassociate: one chunk then.
     *
     * @param gradient receives {@code dL/dtop}, attached to {@code scope}
     * @return the summed negative log-likelihood of the micro-batch
     */
    private double headBackward(GradientCollector gc, ForwardSegments segments, Batch batch, NDArray top,
                                long stepTokens, NDManager scope, NDArray[] gradient) {
        boolean headTrained = ModuleNames.HEAD_WEIGHTS.stream().map(model.weights()::get)
                .anyMatch(w -> w != null && w.hasGradient());
        int positions = batch.size() * batch.seqLen();
        int perChunk = headTrained ? positions : positionsPerHeadChunk(batch);
        NDArray flat = top.reshape(positions, -1);
        List<NDArray> chunkGradients = new ArrayList<>();
        List<NDArray> chunkTerms = new ArrayList<>();
        for (int from = 0; from < positions; from += perChunk) {
            int to = Math.min(positions, from + perChunk);
            try (NDManager chunk = scope.newSubManager()) {
                NDArray hidden = leaf(flat.get(from + ":" + to), chunk);
                NDArray terms = maskedLogLikelihoods(batch, from, to, segments.head(hidden));
                gc.backward(terms.sum().neg().div(EngineArrays.scalar(chunk, stepTokens)));
                NDArray chunkGradient = hidden.getGradient();
                NDArray chunkTerm = terms.stopGradient();
                chunkGradient.attach(scope);
                chunkTerm.attach(scope);
                chunkGradients.add(chunkGradient);
                chunkTerms.add(chunkTerm);
            }
        }
        gradient[0] = concat(chunkGradients).reshape(top.getShape());
        return summedNll(batch, chunkTerms);
    }

    /** Positions per chunk of the head whose logits take about {@link #headChunkLogits} elements (one at least). */
    private int positionsPerHeadChunk(Batch batch) {
        long vocab = model.parameterShapes().get(ModuleNames.EMBED).get(0);
        return (int) Math.max(1, Math.min((long) batch.size() * batch.seqLen(), headChunkLogits / vocab));
    }

    /** {@code -sum} of the chunks' log-likelihood terms, summed as one {@code [B, T]} array as the whole graph does. */
    private static double summedNll(Batch batch, List<NDArray> chunkTerms) {
        return concat(chunkTerms).reshape(batch.size(), batch.seqLen()).sum().neg().getFloat();
    }

    private static NDArray concat(List<NDArray> parts) {
        return parts.size() == 1 ? parts.get(0) : NDArrays.concat(new NDList(parts));
    }

    /** A leaf requiring a gradient that shares {@code x}'s values, attached to {@code scope}: the graph's cut. */
    private static NDArray leaf(NDArray x, NDManager scope) {
        NDArray leaf = view(x, scope);
        leaf.setRequiresGradient(true);
        return leaf;
    }

    /** {@code x}'s values without its history, attached to {@code scope}, so ops on it land there. */
    private static NDArray view(NDArray x, NDManager scope) {
        NDArray detached = x.stopGradient();
        detached.attach(scope);
        return detached;
    }

    /** Mean masked cross-entropy of {@code batches} without training (evaluation), using the method's current values. */
    public double evaluate(List<Batch> batches) {
        double nll = 0;
        long tokens = 0;
        for (Batch b : batches) {
            try (NDManager scope = model.manager().newSubManager()) {
                nll += nllSum(scope, b);
                tokens += b.lossTokens();
            }
        }
        if (tokens == 0) {
            throw new IllegalArgumentException("evaluation batches have no loss tokens");
        }
        return nll / tokens;
    }

    /**
     * The batch's summed negative log-likelihood without gradients, in as little memory as training: each block's
     * intermediates live in a scope of their own until its output is made (a manager keeps every array until it
     * closes, so one scope for the whole pass would hold every block's activations at once), and the head runs in
     * chunks of positions as {@link #headBackward} does, its terms summed once as there: the same sum as the
     * whole-graph pass computes.
     */
    private double nllSum(NDManager scope, Batch b) {
        ForwardSegments segments = segments(scope, b);
        NDArray x = segments.embed();
        for (int l = 0; l < segments.blocks(); l++) {
            try (NDManager block = scope.newSubManager()) {
                NDArray out = segments.block(l, view(x, block), method);
                out.attach(scope);
                x = out;
            }
        }
        int positions = b.size() * b.seqLen();
        int perChunk = positionsPerHeadChunk(b);
        NDArray flat = x.reshape(positions, -1);
        List<NDArray> chunkTerms = new ArrayList<>();
        for (int from = 0; from < positions; from += perChunk) {
            int to = Math.min(positions, from + perChunk);
            try (NDManager chunk = scope.newSubManager()) {
                NDArray terms = maskedLogLikelihoods(b, from, to, segments.head(view(flat.get(from + ":" + to), chunk)));
                terms.attach(scope);
                chunkTerms.add(terms);
            }
        }
        return summedNll(b, chunkTerms);
    }

    private ForwardSegments segments(NDManager scope, Batch b) {
        Shape shape = new Shape(b.size(), b.seqLen());
        return model.segments(scope, EngineArrays.of(scope, b.inputs(), shape),
                EngineArrays.of(scope, b.attentionMask(), shape));
    }

    /** Sum over the batch's loss tokens of {@code -log p(target)}, a scalar attached to the logits' manager. */
    private static NDArray maskedNllSum(Batch b, NDArray logits) {
        return maskedLogLikelihoods(b, 0, b.size() * b.seqLen(), logits).sum().neg();
    }

    /**
     * {@code log p(target)} at positions {@code [from, to)} of the batch (its rows one after the other), 0 where the
     * loss mask is 0, attached to the logits' manager; {@code logits} is {@code [B, T, vocab]} for all positions or
     * {@code [to - from, vocab]}, and the result has the logits' shape without the vocabulary.
     */
    private static NDArray maskedLogLikelihoods(Batch b, int from, int to, NDArray logits) {
        NDManager scope = logits.getManager();
        Shape shape = logits.getShape().slice(0, logits.getShape().dimension() - 1);
        long vocab = logits.getShape().getLastDimension();
        long[] targets = Arrays.copyOfRange(b.targets(), from, to);
        for (long target : targets) {
            if (target < 0 || target >= vocab) {
                throw new IllegalArgumentException("batch " + b.exampleIds() + " has target id " + target
                        + " outside the vocabulary of " + vocab);
            }
        }
        NDArray logp = Casts.to(logits, DataType.FLOAT32).logSoftmax(-1);
        NDArray picked = logp.gather(EngineArrays.of(scope, targets, shape).expandDims(-1), -1).reshape(shape);
        return picked.mul(EngineArrays.of(scope, Arrays.copyOfRange(b.lossMask(), from, to), shape));
    }
}
