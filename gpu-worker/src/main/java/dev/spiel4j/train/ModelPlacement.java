package dev.spiel4j.train;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import dev.spiel4j.model.WeightStorage;

import java.util.Objects;

/**
 * How an {@link EngineModel} holds the base model: on which device, in which compute type, and how the block
 * linears are stored.
 *
 * @param device      where the tensors live (see {@link DeviceSetting#resolve})
 * @param computeType {@link DataType#FLOAT32} or {@link DataType#FLOAT16}: DJL's PyTorch JNI aborts the JVM on any
 *                    bfloat16 tensor, so no other type may reach the engine
 * @param storage     the block linears in the compute type, or as NF4 (qSpIEL)
 */
public record ModelPlacement(Device device, DataType computeType, WeightStorage storage) {

    public ModelPlacement {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(storage, "storage");
        if (computeType != DataType.FLOAT32 && computeType != DataType.FLOAT16) {
            throw new IllegalArgumentException("compute type must be float32 or float16, got " + computeType);
        }
    }

    /** Dense weights in {@code computeType} on {@code device}. */
    public static ModelPlacement dense(Device device, DataType computeType) {
        return new ModelPlacement(device, computeType, WeightStorage.DENSE);
    }

    /** The storage a setting names: {@code none} (dense) or {@code nf4} (qSpIEL, qLoRA). */
    public static WeightStorage storage(String quantize) {
        return switch (quantize) {
            case "none" -> WeightStorage.DENSE;
            case "nf4" -> WeightStorage.NF4;
            default -> throw new IllegalArgumentException("quantization must be none or nf4, got '" + quantize + "'");
        };
    }

    /** The compute type a setting names: {@code float32} or {@code float16}. */
    public static DataType computeType(String name) {
        return switch (name) {
            case "float32" -> DataType.FLOAT32;
            case "float16" -> DataType.FLOAT16;
            default -> throw new IllegalArgumentException("compute type must be float32 or float16, got '" + name
                    + "'");
        };
    }
}
