package dev.spiel4j.bench;

import ai.djl.ndarray.types.DataType;
import dev.spiel4j.data.Batch;
import dev.spiel4j.loader.ModelLoader;
import dev.spiel4j.model.WeightStorage;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.optim.OptimizerSettings;
import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.registry.MethodRegistry;
import dev.spiel4j.peft.registry.MethodSettings;
import dev.spiel4j.train.BackwardPass;
import dev.spiel4j.train.DeviceSetting;
import dev.spiel4j.train.EngineModel;
import dev.spiel4j.train.ModelPlacement;
import dev.spiel4j.train.SessionSpec;
import dev.spiel4j.train.TrainingSession;

import java.nio.file.Path;
import java.util.List;

/**
 * The real engine as a {@link BenchWorkload} (name {@code engine}): the base model from the spec (the GGUF file,
 * else the Hugging Face directory, or a random LLaMA shape), the spec's method at its budget (sparse methods: the
 * spec's delta count; LoRA: its rank, alpha and dropout), and {@link TrainingSession} steps at the spec's constant
 * learning rate without gradient clipping, as the Python peer runs them, with block-wise backward passes or, when the
 * spec asks for activation checkpointing, checkpointed ones. The base model is uploaded first (as an
 * {@link EngineModel}, on the {@code auto} device) so the child can measure it alone; the session takes it over when
 * the method is attached.
 */
final class EngineWorkload implements BenchWorkload {

    /** Registered in {@code META-INF/services/dev.spiel4j.bench.BenchWorkload$Factory}. */
    public static final class Factory implements BenchWorkload.Factory {
        @Override
        public String name() {
            return "engine";
        }

        @Override
        public BenchWorkload loadBase(BenchSpec spec) {
            ModelPlacement placement = new ModelPlacement(DeviceSetting.AUTO.resolve("device"),
                    computeType(spec.dtype()), spec.dtype().equals("nf4") ? WeightStorage.NF4 : WeightStorage.DENSE);
            return new EngineWorkload(spec, model(spec.model(), placement));
        }
    }

    private final BenchSpec spec;
    /** The base model until {@link #attachMethod}, then the session's. */
    private final EngineModel base;
    private TrainingSession session;

    private EngineWorkload(BenchSpec spec, EngineModel base) {
        this.spec = spec;
        this.base = base;
    }

    /**
     * fp32 and nf4 (its dequantized block linears and every other weight) run in float32. bf16 is refused: DJL's
     * PyTorch JNI aborts the JVM on any bfloat16 tensor (see stack.md), so there is no bf16 compute to measure.
     */
    static DataType computeType(String dtype) {
        if (dtype.equals("fp32") || dtype.equals("nf4")) {
            return DataType.FLOAT32;
        }
        throw new IllegalArgumentException("dtype " + dtype + " is not supported by the engine: DJL's PyTorch engine"
                + " aborts on bfloat16 tensors, so the engine computes in float32 (or float16)");
    }

    static EngineModel model(BenchSpec.Model m, ModelPlacement placement) {
        if (m.random() != null) {
            BenchSpec.RandomShape s = m.random();
            return EngineModel.random(s.config(), s.seed(), placement);
        }
        Path weights = Path.of(m.gguf() != null ? m.gguf() : m.hfDir());
        return EngineModel.load(ModelLoader.load(weights), placement);
    }

    /** The spec's method: sparse methods get the spec's delta count (or LoRA's count at its rank when 0). */
    static MethodConfig methodConfig(BenchSpec spec) {
        BenchSpec.Budget b = spec.budget();
        Budget sparse = b.deltas() > 0 ? new Budget.Count(b.deltas()) : new Budget.MatchLoraRank(b.loraRank());
        return MethodRegistry.config(spec.method(), MethodSettings.defaults(sparse)
                .withLora(b.loraRank(), (float) b.loraAlpha(), (float) b.loraDropout())
                .withOptimizer(OptimizerSettings.DEFAULTS.withWeightDecay((float) spec.weightDecay()))
                .withSeed(spec.seed()));
    }

    @Override
    public long baseWeightBytes() {
        return base.model().weightBytes();
    }

    @Override
    public void attachMethod() {
        session = TrainingSession.open(base, sessionSpec(spec));
    }

    /** What the session trains: the spec's method over warm-up + measured steps, unclipped, its backward pass. */
    static SessionSpec sessionSpec(BenchSpec spec) {
        return SessionSpec.unclipped(methodConfig(spec), spec.warmupSteps() + spec.steps()).withBackward(
                spec.activationCheckpointing() ? BackwardPass.CHECKPOINTED : BackwardPass.BLOCK_WISE);
    }

    @Override
    public long trainableParams() {
        return session.method().trainableParameters();
    }

    @Override
    public double step(Batch batch) {
        return session.step(List.of(batch), (float) spec.lr()).loss();
    }

    @Override
    public double evalLoss(List<Batch> batches) {
        return session.evaluate(batches);
    }

    @Override
    public long optimizerStateBytes() {
        return session.method().optimizerStateBytes();
    }

    @Override
    public void close() {
        if (session != null) {
            session.close();
        } else {
            base.close();
        }
    }
}
