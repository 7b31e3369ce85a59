package dev.spiel4j.streams;

import java.util.Objects;

/**
 * Where a training data stream resumes: read the record at {@code record} and drop the first
 * {@code chunksDone} pieces it encodes to (a long text split into chunks may straddle two batches).
 *
 * @param record     the source position of the next record ({@link dev.spiel4j.data.ReadPosition} for files,
 *                   {@link KafkaOffsets} for a topic)
 * @param chunksDone pieces of that record already trained on, usually 0
 * @param <P>        the kind of source position
 */
public record DataPosition<P>(P record, int chunksDone) {
    public DataPosition {
        Objects.requireNonNull(record, "record");
        if (chunksDone < 0) {
            throw new IllegalArgumentException("chunksDone must be >= 0, is " + chunksDone);
        }
    }

    /** The start of the record at {@code record}. */
    public static <P> DataPosition<P> at(P record) {
        return new DataPosition<>(record, 0);
    }
}
