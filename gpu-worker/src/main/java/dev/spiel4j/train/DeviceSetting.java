package dev.spiel4j.train;

import ai.djl.Device;
import ai.djl.engine.Engine;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where the engine's tensors live, as a setting says it ({@code auto}, {@code cpu} or {@code gpu:N}): the one place
 * that parses such a setting ({@link #parse}) and turns it into a DJL {@link Device} ({@link #resolve}). The
 * service's {@code device} setting, the commands' {@code --device} and the benchmarks all go through here.
 *
 * @param kind  auto (a GPU if the engine has one, else the CPU), the CPU, or one GPU
 * @param index the GPU's index for {@link Kind#GPU}, else 0
 */
public record DeviceSetting(Kind kind, int index) {
    public enum Kind { AUTO, CPU, GPU }

    public static final DeviceSetting AUTO = new DeviceSetting(Kind.AUTO, 0);
    public static final DeviceSetting CPU = new DeviceSetting(Kind.CPU, 0);

    /** At most three digits: a GPU index, never a number that overflows an int. */
    private static final Pattern GPU = Pattern.compile("gpu:(\\d{1,3})");

    public DeviceSetting {
        if (kind == null) {
            throw new IllegalArgumentException("device kind must not be null");
        }
        if (kind == Kind.GPU ? index < 0 : index != 0) {
            throw new IllegalArgumentException("device index " + index + " does not fit " + kind);
        }
    }

    public static DeviceSetting gpu(int index) {
        return new DeviceSetting(Kind.GPU, index);
    }

    /**
     * {@code auto}, {@code cpu} or {@code gpu:N} (any letter case).
     *
     * @throws IllegalArgumentException saying what was expected and quoting {@code text}; callers prefix the name of
     *                                  their setting
     */
    public static DeviceSetting parse(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.equals("auto")) {
            return AUTO;
        }
        if (t.equals("cpu")) {
            return CPU;
        }
        Matcher gpu = GPU.matcher(t);
        if (gpu.matches()) {
            return gpu(Integer.parseInt(gpu.group(1)));
        }
        throw new IllegalArgumentException("expected auto, cpu or gpu:N (N a GPU index), got '" + text + "'");
    }

    /**
     * The engine's device for this setting.
     *
     * @param settingName how the caller's user wrote the setting ({@code device}, {@code --device}), for the error
     * @throws IllegalArgumentException when the engine does not have the GPU asked for
     */
    public Device resolve(String settingName) {
        Engine engine = Engine.getInstance();
        return switch (kind) {
            case AUTO -> engine.defaultDevice();
            case CPU -> Device.cpu();
            case GPU -> {
                if (index >= engine.getGpuCount()) {
                    throw new IllegalArgumentException(settingName + " " + this + ": the " + engine.getEngineName()
                            + " engine sees " + engine.getGpuCount() + " GPU(s)");
                }
                yield Device.gpu(index);
            }
        };
    }

    /** The setting as it is written: {@code auto}, {@code cpu} or {@code gpu:N}. */
    @Override
    public String toString() {
        return kind == Kind.GPU ? "gpu:" + index : kind.name().toLowerCase(Locale.ROOT);
    }
}
