package dev.spiel4j.peft;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.spiel4j.model.ModuleNames;
import dev.spiel4j.peft.full.FullFineTuning;
import dev.spiel4j.peft.ia3.Ia3;
import dev.spiel4j.peft.lora.Lora;
import dev.spiel4j.peft.sft.DropGrowSchedule;
import dev.spiel4j.peft.sft.SpielAg;
import dev.spiel4j.peft.sft.SpielMa;
import dev.spiel4j.model.CausalLm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Everything needed to build a {@link FineTuningMethod}: which method, its budget and targets and its
 * hyperparameters. Build one with a factory ({@link #spielAg}, {@link #lora}, ...) and adjust it with the
 * {@code with*} methods; {@link #create} instantiates it for a model and a number of update steps.
 *
 * @param method        which method
 * @param budget        sparse methods' total number of deltas (ignored by the others)
 * @param targets       block-linear short names to fine-tune, e.g. {@code self_attn.q_proj} (SpIEL and LoRA;
 *                      (IA)3 always uses k, v and down, full fine-tuning everything)
 * @param loraRank      LoRA rank r
 * @param loraAlpha     LoRA scaling numerator (the update is scaled by alpha / r)
 * @param loraDropout   dropout on LoRA's input during training
 * @param weightDecay   decoupled weight decay (the paper's lambda for SpIEL)
 * @param beta1         AdamW first-moment decay
 * @param beta2         AdamW second-moment decay
 * @param eps           AdamW / SM3 epsilon
 * @param interval      SpIEL reselection interval S
 * @param phase         SpIEL-AG selection-phase length gamma
 * @param peakRate      SpIEL initial replacement rate xi
 * @param scheduleKind  SpIEL replacement-fraction decay
 * @param candidateFactor SpIEL-AG candidates per matrix as a multiple of its k (the paper uses 1)
 * @param seed          seed of every random choice the method makes (initial indices, LoRA init, dropout)
 */
public record MethodSpec(Method method, Budget budget, List<String> targets, int loraRank, float loraAlpha,
                         float loraDropout, float weightDecay, float beta1, float beta2, float eps, int interval,
                         int phase, double peakRate, DropGrowSchedule.Kind scheduleKind, double candidateFactor,
                         long seed) {

    /** The available methods, by their command-line names. */
    public enum Method {
        SPIEL_AG("spiel-ag"), SPIEL_MA("spiel-ma"), LORA("lora"), IA3("ia3"), FULL("full");

        private final String cliName;

        Method(String cliName) {
            this.cliName = cliName;
        }

        public String cliName() {
            return cliName;
        }

        public static Method parse(String name) {
            for (Method m : values()) {
                if (m.cliName.equals(name)) {
                    return m;
                }
            }
            throw new IllegalArgumentException("unknown fine-tuning method '" + name + "'; expected one of "
                    + Arrays.stream(values()).map(Method::cliName).toList());
        }
    }

    public MethodSpec {
        Objects.requireNonNull(method, "method");
        targets = List.copyOf(targets);
        if ((method == Method.SPIEL_AG || method == Method.SPIEL_MA) && budget == null) {
            throw new IllegalArgumentException(method.cliName() + " needs a budget (density, count or LoRA rank)");
        }
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("no target modules given");
        }
        if (loraRank < 1 || !(loraAlpha > 0) || !(loraDropout >= 0 && loraDropout < 1)) {
            throw new IllegalArgumentException("LoRA needs rank >= 1, alpha > 0, 0 <= dropout < 1; got rank=" + loraRank
                    + " alpha=" + loraAlpha + " dropout=" + loraDropout);
        }
        if (!(candidateFactor > 0)) {
            throw new IllegalArgumentException("candidate factor must be positive, got " + candidateFactor);
        }
    }

    private static MethodSpec base(Method method, Budget budget) {
        return new MethodSpec(method, budget, ModuleNames.BLOCK_LINEARS, 64, 16f, 0.1f, 0f, 0.9f, 0.999f, 1e-8f,
                DropGrowSchedule.DEFAULT_INTERVAL, DropGrowSchedule.DEFAULT_PHASE, DropGrowSchedule.DEFAULT_PEAK_RATE,
                DropGrowSchedule.Kind.LINEAR, 1.0, 0L);
    }

    public static MethodSpec spielAg(Budget budget) {
        return base(Method.SPIEL_AG, Objects.requireNonNull(budget, "budget"));
    }

    public static MethodSpec spielMa(Budget budget) {
        return base(Method.SPIEL_MA, Objects.requireNonNull(budget, "budget"));
    }

    public static MethodSpec lora(int rank, float alpha, float dropout) {
        return base(Method.LORA, null).withLora(rank, alpha, dropout);
    }

    public static MethodSpec ia3() {
        return base(Method.IA3, null);
    }

    public static MethodSpec full() {
        return base(Method.FULL, null);
    }

    public MethodSpec withLora(int rank, float alpha, float dropout) {
        return new MethodSpec(method, budget, targets, rank, alpha, dropout, weightDecay, beta1, beta2, eps, interval,
                phase, peakRate, scheduleKind, candidateFactor, seed);
    }

    public MethodSpec withWeightDecay(float wd) {
        return new MethodSpec(method, budget, targets, loraRank, loraAlpha, loraDropout, wd, beta1, beta2, eps, interval,
                phase, peakRate, scheduleKind, candidateFactor, seed);
    }

    public MethodSpec withSchedule(int s, int gamma, double xi, DropGrowSchedule.Kind kind) {
        return new MethodSpec(method, budget, targets, loraRank, loraAlpha, loraDropout, weightDecay, beta1, beta2, eps,
                s, gamma, xi, kind, candidateFactor, seed);
    }

    public MethodSpec withTargets(List<String> shortNames) {
        return new MethodSpec(method, budget, shortNames, loraRank, loraAlpha, loraDropout, weightDecay, beta1, beta2,
                eps, interval, phase, peakRate, scheduleKind, candidateFactor, seed);
    }

    public MethodSpec withSeed(long newSeed) {
        return new MethodSpec(method, budget, targets, loraRank, loraAlpha, loraDropout, weightDecay, beta1, beta2, eps,
                interval, phase, peakRate, scheduleKind, candidateFactor, newSeed);
    }

    /** The SpIEL schedule of this spec for a run of {@code totalSteps} update steps. */
    public DropGrowSchedule schedule(int totalSteps) {
        return new DropGrowSchedule(totalSteps, interval, phase, peakRate, scheduleKind);
    }

    /** Instantiates the method for {@code model}, trained for {@code totalSteps} update steps. */
    public FineTuningMethod create(CausalLm model, int totalSteps) {
        // shapes rather than arrays: block linears stored as NF4 are targets without a dense array
        Map<String, Shape> shapes = model.parameterShapes();
        long parameters = shapes.values().stream().mapToLong(Shape::size).sum();
        return switch (method) {
            case SPIEL_AG -> new SpielAg(this, resolveTargetShapes(shapes, targets), parameters, totalSteps,
                    model.weights(), model.manager());
            case SPIEL_MA -> new SpielMa(this, resolveTargetShapes(shapes, targets), parameters, totalSteps,
                    model.weights(), model.manager());
            case LORA -> new Lora(this, resolveTargetShapes(shapes, targets), model.manager());
            case IA3 -> new Ia3(this, resolveTargetShapes(shapes, Ia3.TARGETS), model.manager());
            case FULL -> {
                if (!model.weights().keySet().equals(shapes.keySet())) {
                    throw new IllegalArgumentException("full fine-tuning needs every weight held densely; the model"
                            + " holds only " + model.weights().size() + " of its " + shapes.size() + " weights so");
                }
                yield new FullFineTuning(this, model.weights(), model.manager());
            }
        };
    }

    private static final Pattern BLOCK_WEIGHT = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)\\.weight");

    /**
     * The block linears of {@code weights} whose short name is in {@code shortNames}, ordered by layer and then by
     * the order of {@code shortNames}; refuses a target list that matches nothing.
     */
    public static List<TargetMatrix> resolveTargets(Map<String, NDArray> weights, List<String> shortNames) {
        Map<String, Shape> shapes = new LinkedHashMap<>();
        weights.forEach((name, array) -> shapes.put(name, array.getShape()));
        return resolveTargetShapes(shapes, shortNames);
    }

    /** {@link #resolveTargets} from the weights' shapes alone. */
    public static List<TargetMatrix> resolveTargetShapes(Map<String, Shape> shapes, List<String> shortNames) {
        record Found(int layer, int order, TargetMatrix matrix) {
        }
        List<Found> found = new ArrayList<>();
        for (Map.Entry<String, Shape> e : shapes.entrySet()) {
            Matcher m = BLOCK_WEIGHT.matcher(e.getKey());
            if (!m.matches() || !shortNames.contains(m.group(2))) {
                continue;
            }
            long[] shape = e.getValue().getShape();
            if (shape.length != 2) {
                throw new IllegalArgumentException("target '" + e.getKey() + "' has shape " + Arrays.toString(shape)
                        + ", not a matrix");
            }
            String module = e.getKey().substring(0, e.getKey().length() - ".weight".length());
            found.add(new Found(Integer.parseInt(m.group(1)), shortNames.indexOf(m.group(2)),
                    new TargetMatrix(module, Math.toIntExact(shape[0]), Math.toIntExact(shape[1]))));
        }
        if (found.isEmpty()) {
            throw new IllegalArgumentException("no model weight matches the targets " + shortNames);
        }
        found.sort(Comparator.comparingInt(Found::layer).thenComparingInt(Found::order));
        return found.stream().map(Found::matrix).toList();
    }

    /** Number of parameters of the whole model. */
    public static long parameterCount(Map<String, NDArray> weights) {
        return weights.values().stream().mapToLong(a -> a.getShape().size()).sum();
    }
}
