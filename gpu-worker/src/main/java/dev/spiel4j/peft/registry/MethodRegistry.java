package dev.spiel4j.peft.registry;

import dev.spiel4j.peft.MethodConfig;
import dev.spiel4j.peft.full.FullConfig;
import dev.spiel4j.peft.ia3.Ia3Config;
import dev.spiel4j.peft.lora.LoraConfig;
import dev.spiel4j.peft.sft.SpielConfig;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * The fine-tuning methods by name, like PEFT's {@code register_peft_method}: each registration builds its method's
 * own config record from a run's {@link MethodSettings}, and the config creates the method. The service's settings,
 * the command line and the benchmark take method names from here, so a new method is one registration.
 */
public final class MethodRegistry {

    /**
     * A registered method.
     *
     * @param name         the name settings and the command line use, and checkpoints record
     * @param writesDeltas whether its fine-tunings are (index, delta) pairs that {@code --sft} can apply
     * @param configFrom   its config from a run's settings
     */
    public record Registration(String name, boolean writesDeltas, Function<MethodSettings, MethodConfig> configFrom) {
        public Registration {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(configFrom, "configFrom");
        }
    }

    private static final Map<String, Registration> METHODS = new LinkedHashMap<>();

    static {
        for (SpielConfig.Growth growth : SpielConfig.Growth.values()) {
            register(new Registration(growth.methodName(), true, s -> spiel(growth, s)));
        }
        register(new Registration(LoraConfig.NAME, false, s -> new LoraConfig(s.loraRank(), s.loraAlpha(),
                s.loraDropout(), s.targets(), s.optimizer(), s.seed())));
        register(new Registration(Ia3Config.NAME, false, s -> new Ia3Config(s.optimizer())));
        register(new Registration(FullConfig.NAME, false, s -> new FullConfig(s.optimizer())));
    }

    private MethodRegistry() {
    }

    /** Adds a method; refuses a name that is taken. */
    public static synchronized void register(Registration registration) {
        if (METHODS.putIfAbsent(registration.name(), registration) != null) {
            throw new IllegalArgumentException("a fine-tuning method named '" + registration.name()
                    + "' is registered already");
        }
    }

    /** The registered names, in registration order. */
    public static synchronized List<String> names() {
        return List.copyOf(METHODS.keySet());
    }

    /** The registration of {@code name}; refuses an unknown name, listing the known ones. */
    public static synchronized Registration get(String name) {
        Registration r = METHODS.get(name);
        if (r == null) {
            throw new IllegalArgumentException("unknown fine-tuning method '" + name + "'; expected one of "
                    + METHODS.keySet());
        }
        return r;
    }

    /** Whether {@code name} is registered. */
    public static synchronized boolean contains(String name) {
        return METHODS.containsKey(name);
    }

    /** The config of method {@code name} from a run's settings. */
    public static MethodConfig config(String name, MethodSettings settings) {
        return get(name).configFrom().apply(settings);
    }

    private static SpielConfig spiel(SpielConfig.Growth growth, MethodSettings s) {
        return new SpielConfig(growth, s.budget().orElse(null), s.targets(), s.interval(), s.phase(), s.peakRate(),
                s.scheduleKind(), 1.0, s.optimizer(), s.seed());
    }
}
