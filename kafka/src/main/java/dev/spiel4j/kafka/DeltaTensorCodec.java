package dev.spiel4j.kafka;

import dev.spiel4j.checkpoint.DeltaTensor;

/**
 * Converts the engine's {@link DeltaTensor} to and from its protobuf form ({@code spiel4j.v1.DeltaTensor}):
 * int32 indices while the matrix has fewer than 2^31 elements (half the bytes), int64 beyond.
 */
public final class DeltaTensorCodec {

    private DeltaTensorCodec() {
    }

    public static dev.spiel4j.proto.v1.DeltaTensor toProto(DeltaTensor tensor) {
        var builder = dev.spiel4j.proto.v1.DeltaTensor.newBuilder()
                .setModule(tensor.module()).setRows(tensor.rows()).setCols(tensor.cols());
        long[] indices = tensor.indices();
        boolean narrow = (long) tensor.rows() * tensor.cols() <= Integer.MAX_VALUE;
        for (long index : indices) {
            if (narrow) {
                builder.addIndices32((int) index);
            } else {
                builder.addIndices64(index);
            }
        }
        for (float value : tensor.values()) {
            builder.addValues(value);
        }
        return builder.build();
    }

    /**
     * @throws IllegalArgumentException naming the module if the message is inconsistent (both index lists
     *                                  used, a count mismatch, a shape or index out of range)
     */
    public static DeltaTensor fromProto(dev.spiel4j.proto.v1.DeltaTensor message) {
        String module = message.getModule();
        if (message.getIndices32Count() > 0 && message.getIndices64Count() > 0) {
            throw new IllegalArgumentException("delta tensor '" + module + "' uses both indices32 and indices64");
        }
        if (message.getRows() > Integer.MAX_VALUE || message.getCols() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("delta tensor '" + module + "' has shape [" + message.getRows() + ", "
                    + message.getCols() + "], beyond 2^31-1 per dimension");
        }
        int count = Math.max(message.getIndices32Count(), message.getIndices64Count());
        long[] indices = new long[count];
        for (int i = 0; i < count; i++) {
            indices[i] = message.getIndices32Count() > 0 ? message.getIndices32(i) : message.getIndices64(i);
        }
        float[] values = new float[message.getValuesCount()];
        for (int i = 0; i < values.length; i++) {
            values[i] = message.getValues(i);
        }
        return new DeltaTensor(module, (int) message.getRows(), (int) message.getCols(), indices, values);
    }
}
