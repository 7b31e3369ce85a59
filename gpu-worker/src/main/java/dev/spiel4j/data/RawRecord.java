package dev.spiel4j.data;

import java.util.Objects;

/**
 * One record as read from a source, before parsing: its bytes and where it sits.
 *
 * @param sourceId where the record is, for ids and dead letters (e.g. {@code alpaca.json#12}, {@code a.txt:40})
 * @param bytes    the record's bytes, as stored (not yet checked for valid UTF-8)
 * @param at       the position that reads this record again
 * @param next     the position that reads on after this record (the resume point once it is consumed)
 * @param <P>      the kind of position: {@link ReadPosition} for files, partition offsets for Kafka
 */
public record RawRecord<P>(String sourceId, byte[] bytes, P at, P next) {
    public RawRecord {
        Objects.requireNonNull(sourceId, "sourceId");
        Objects.requireNonNull(bytes, "bytes");
        Objects.requireNonNull(at, "at");
        Objects.requireNonNull(next, "next");
    }
}
