package dev.spiel4j.cli;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.io.LoadedModel;
import dev.spiel4j.model.LlamaModel;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The options of every subcommand that runs the model: {@code --model}, {@code --device} and {@code --dtype}.
 * {@link #open} uploads the model onto the chosen device in the chosen compute type.
 */
final class EngineOptions {
    private static final Pattern GPU = Pattern.compile("gpu:(\\d+)");

    /**
     * Compute types DJL's PyTorch engine runs here (bfloat16 aborts the JVM, see LlamaModel). Lower-case constants
     * because picocli matches and lists them as the option's values.
     */
    enum ComputeType {
        float32(DataType.FLOAT32), float16(DataType.FLOAT16);

        final DataType dataType;

        ComputeType(DataType dataType) {
            this.dataType = dataType;
        }
    }

    @Spec(Spec.Target.MIXEE)
    private CommandSpec mixee;

    @Mixin
    ModelOption model;

    @Option(names = "--device", paramLabel = "auto|cpu|gpu:N", defaultValue = "auto",
            description = "Where tensors live: auto (a GPU if the engine has one, else the CPU), cpu or gpu:N."
                    + " Default: ${DEFAULT-VALUE}.")
    private String device;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "float32",
            description = "Compute type of the base weights: ${COMPLETION-CANDIDATES}. Default: ${DEFAULT-VALUE}.")
    private ComputeType dtype;

    /** Checks --device's syntax and --model's existence: usage errors, before anything is loaded. */
    void validate() {
        model.requireExists();
        deviceName();
    }

    /** --device in lower case, or a usage error when it is none of auto, cpu, gpu:N. */
    private String deviceName() {
        String d = device.toLowerCase(Locale.ROOT);
        if (!d.equals("auto") && !d.equals("cpu") && !GPU.matcher(d).matches()) {
            throw new ParameterException(mixee.commandLine(),
                    "--device: expected auto, cpu or gpu:N (N a GPU index), got '" + device + "'");
        }
        return d;
    }

    /** The DJL device for --device; a GPU index the engine does not have is a runtime failure. */
    Device device() {
        String d = deviceName();
        Engine engine = Engine.getInstance();
        if (d.equals("auto")) {
            return engine.defaultDevice();
        }
        if (d.equals("cpu")) {
            return Device.cpu();
        }
        Matcher m = GPU.matcher(d);
        m.matches();
        int index = Integer.parseInt(m.group(1));
        if (index >= engine.getGpuCount()) {
            throw new IllegalArgumentException("--device " + device + ": the " + engine.getEngineName()
                    + " engine sees " + engine.getGpuCount() + " GPU(s)");
        }
        return Device.gpu(index);
    }

    DataType dataType() {
        return dtype.dataType;
    }

    /** A base manager on the chosen device; the caller closes it (after the model). */
    NDManager newManager() {
        return NDManager.newBaseManager(device());
    }

    /** Uploads the loaded model into a sub-manager of {@code parent} in the chosen compute type. */
    LlamaModel open(LoadedModel loaded, NDManager parent) {
        return LlamaModel.create(loaded, parent, dataType());
    }
}
