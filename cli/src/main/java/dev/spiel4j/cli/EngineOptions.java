package dev.spiel4j.cli;

import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.train.DeviceSetting;
import dev.spiel4j.train.EngineModel;
import dev.spiel4j.train.ModelPlacement;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The options of every subcommand that runs the model: {@code --model}, {@code --device}, {@code --dtype} and
 * {@code --quantize}. {@link #open} uploads the model onto the chosen device in the chosen compute type.
 */
final class EngineOptions {

    /**
     * Compute types DJL's PyTorch engine runs here (bfloat16 aborts the JVM, see {@link ModelPlacement}), named as
     * {@link ModelPlacement#computeType(String)} reads them. Lower-case constants because picocli matches and lists
     * them as the option's values.
     */
    enum ComputeType { float32, float16 }

    /** How the block linears are stored, named as {@link ModelPlacement#storage(String)} reads them. */
    enum Quantize { none, nf4 }

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

    @Option(names = "--quantize", paramLabel = "KIND", defaultValue = "none",
            description = "Store the block linears as ${COMPLETION-CANDIDATES} (nf4: 4-bit NormalFloat with double-quantized"
                    + " absmax, the base of qSpIEL and qLoRA). Default: ${DEFAULT-VALUE}.")
    private Quantize quantize;

    /** Checks --device's syntax and --model's existence: usage errors, before anything is loaded. */
    void validate() {
        model.requireExists();
        deviceSetting();
    }

    /** --device, or a usage error when it is none of auto, cpu, gpu:N. */
    private DeviceSetting deviceSetting() {
        try {
            return DeviceSetting.parse(device);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(mixee.commandLine(), "--device: " + e.getMessage());
        }
    }

    /**
     * Uploads the loaded model onto the chosen device in the chosen compute type; the caller closes it. A GPU index
     * the engine does not have is a runtime failure.
     */
    EngineModel open(LoadedModel loaded) {
        return EngineModel.load(loaded, new ModelPlacement(deviceSetting().resolve("--device"),
                ModelPlacement.computeType(dtype.name()), ModelPlacement.storage(quantize.name())));
    }
}
