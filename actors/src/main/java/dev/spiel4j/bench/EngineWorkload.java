package dev.spiel4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.data.Batch;
import dev.spiel4j.io.ModelLoader;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.RopeLayout;
import dev.spiel4j.peft.Budget;
import dev.spiel4j.peft.FineTuningMethod;
import dev.spiel4j.peft.MethodSpec;
import dev.spiel4j.train.Trainer;

import java.nio.file.Path;
import java.util.List;

/**
 * The real engine as a {@link BenchWorkload} (name {@code engine}): the base model from the spec (the GGUF file,
 * else the Hugging Face directory, or a random LLaMA shape), the spec's method at its budget (sparse methods: the
 * spec's delta count; LoRA: its rank, alpha and dropout), and {@link Trainer} steps at the spec's constant learning
 * rate without gradient clipping, as the Python peer runs them.
 */
public final class EngineWorkload implements BenchWorkload {

    /** Registered in {@code META-INF/services/dev.spiel4j.bench.BenchWorkload$Factory}. */
    public static final class Factory implements BenchWorkload.Factory {
        @Override
        public String name() {
            return "engine";
        }

        @Override
        public BenchWorkload loadBase(BenchSpec spec) {
            DataType type = computeType(spec.dtype());
            NDManager root = NDManager.newBaseManager();
            try {
                return new EngineWorkload(spec, root, model(spec.model(), root, type));
            } catch (RuntimeException e) {
                root.close();
                throw e;
            }
        }
    }

    private final BenchSpec spec;
    private final NDManager root;
    private final LlamaModel model;
    private FineTuningMethod method;
    private Trainer trainer;

    private EngineWorkload(BenchSpec spec, NDManager root, LlamaModel model) {
        this.spec = spec;
        this.root = root;
        this.model = model;
    }

    /**
     * fp32 runs in float32. bf16 is refused: DJL's PyTorch JNI aborts the JVM on any bfloat16 tensor (see
     * stack.md), so there is no bf16 compute to measure.
     */
    static DataType computeType(String dtype) {
        if (dtype.equals("fp32")) {
            return DataType.FLOAT32;
        }
        throw new IllegalArgumentException("dtype " + dtype + " is not supported by the engine: DJL's PyTorch engine"
                + " aborts on bfloat16 tensors, so the engine computes in float32 (or float16)");
    }

    static LlamaModel model(BenchSpec.Model m, NDManager root, DataType type) {
        if (m.random() != null) {
            BenchSpec.RandomShape s = m.random();
            LlamaConfig config = new LlamaConfig(s.dim(), s.layers(), s.heads(), s.kvHeads(), s.ffnDim(),
                    s.vocabSize(), s.contextLength(), (float) s.normEps(), (float) s.ropeTheta(),
                    RopeLayout.ROTATE_HALF, s.tiedEmbeddings());
            return LlamaModel.random(config, s.seed(), root, type);
        }
        Path weights = Path.of(m.gguf() != null ? m.gguf() : m.hfDir());
        return LlamaModel.create(ModelLoader.load(weights), root, type);
    }

    /** The spec's method: sparse methods get the spec's delta count (or LoRA's count at its rank when 0). */
    static MethodSpec methodSpec(BenchSpec spec) {
        BenchSpec.Budget b = spec.budget();
        Budget sparse = b.deltas() > 0 ? new Budget.Count(b.deltas()) : new Budget.MatchLoraRank(b.loraRank());
        MethodSpec m = switch (MethodSpec.Method.parse(spec.method())) {
            case SPIEL_AG -> MethodSpec.spielAg(sparse);
            case SPIEL_MA -> MethodSpec.spielMa(sparse);
            case LORA -> MethodSpec.lora(b.loraRank(), (float) b.loraAlpha(), (float) b.loraDropout());
            case IA3 -> MethodSpec.ia3();
            case FULL -> MethodSpec.full();
        };
        return m.withWeightDecay((float) spec.weightDecay()).withSeed(spec.seed());
    }

    @Override
    public long baseWeightBytes() {
        long bytes = 0;
        for (NDArray w : model.weights().values()) {
            bytes += w.getShape().size() * w.getDataType().getNumOfBytes();
        }
        return bytes;
    }

    @Override
    public void attachMethod() {
        method = methodSpec(spec).create(model, spec.warmupSteps() + spec.steps());
        trainer = new Trainer(model, method, Float.POSITIVE_INFINITY);
    }

    @Override
    public long trainableParams() {
        return method.trainableParameters();
    }

    @Override
    public double step(Batch batch) {
        return trainer.step(List.of(batch), (float) spec.lr()).loss();
    }

    @Override
    public double evalLoss(List<Batch> batches) {
        return trainer.evaluate(batches);
    }

    @Override
    public long optimizerStateBytes() {
        return method.optimizerStateBytes();
    }

    @Override
    public void close() {
        if (method != null) {
            method.close();
        }
        model.close();
        root.close();
    }
}
