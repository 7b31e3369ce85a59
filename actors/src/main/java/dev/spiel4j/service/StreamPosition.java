package dev.spiel4j.service;

import dev.spiel4j.data.ReadPosition;
import dev.spiel4j.proto.v1.FileCursor;
import dev.spiel4j.proto.v1.KafkaCursor;
import dev.spiel4j.proto.v1.PartitionOffset;
import dev.spiel4j.streams.DataPosition;
import dev.spiel4j.streams.KafkaOffsets;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Where a run's training data stands: the next example the trainer has not trained on. Stored in every
 * checkpoint (training-state metadata and the Kafka manifest), so a resumed run reads on from exactly here.
 */
sealed interface StreamPosition {

    /** Metadata keys under which the position is stored in the training-state file. */
    String KIND = "data.kind";

    /**
     * In an example file, read epoch after epoch, in file order or each epoch in its own seeded order.
     *
     * @param epoch    0-based pass over the file
     * @param at       the next record of that pass (and the pieces of it already trained on); when shuffled, its
     *                 record number is the index in the epoch's order and its byte offset and line are 0
     * @param shuffled whether the epochs are read in seeded orders ({@code data.shuffle}) or in file order
     */
    record InFile(long epoch, DataPosition<ReadPosition> at, boolean shuffled) implements StreamPosition {
        public InFile {
            Objects.requireNonNull(at, "at");
            if (epoch < 0) {
                throw new IllegalArgumentException("epoch must be >= 0, is " + epoch);
            }
            if (shuffled && (at.record().byteOffset() != 0 || at.record().line() != 0)) {
                throw new IllegalArgumentException("a shuffled position counts records only, got " + at.record());
            }
        }

        /** The start of epoch {@code epoch}. */
        public static InFile start(long epoch, boolean shuffled) {
            return new InFile(epoch, DataPosition.at(ReadPosition.START), shuffled);
        }

        /** The order name stored in checkpoints. */
        String order() {
            return shuffled ? SHUFFLED : FILE_ORDER;
        }
    }

    /** {@code data.order} of a shuffled file position. */
    String SHUFFLED = "shuffled";
    /** {@code data.order} of a position in file order (also what a checkpoint without the key means). */
    String FILE_ORDER = "file";

    /** In the input topic (continual mode): the next offset of every partition. */
    record InTopic(DataPosition<KafkaOffsets> at) implements StreamPosition {
        public InTopic {
            Objects.requireNonNull(at, "at");
        }
    }

    /** The position as string metadata (see {@link #fromMetadata}). */
    default Map<String, String> toMetadata() {
        Map<String, String> m = new LinkedHashMap<>();
        if (this instanceof InFile f) {
            m.put(KIND, "file");
            m.put("data.epoch", Long.toString(f.epoch()));
            m.put("data.record", Long.toString(f.at().record().record()));
            m.put("data.byte-offset", Long.toString(f.at().record().byteOffset()));
            m.put("data.line", Long.toString(f.at().record().line()));
            m.put("data.chunks-done", Integer.toString(f.at().chunksDone()));
            m.put("data.order", f.order());
        } else {
            InTopic t = (InTopic) this;
            m.put(KIND, "kafka");
            m.put("data.topic", t.at().record().topic());
            StringBuilder offsets = new StringBuilder();
            new TreeMap<>(t.at().record().next()).forEach((p, o) -> offsets.append(offsets.isEmpty() ? "" : ",").append(p)
                    .append(':').append(o));
            m.put("data.offsets", offsets.toString());
            m.put("data.chunks-done", Integer.toString(t.at().chunksDone()));
        }
        return m;
    }

    /**
     * Reads a position written by {@link #toMetadata}.
     *
     * @param where names the file the metadata came from, for the error message
     * @throws IllegalArgumentException naming the missing or malformed key
     */
    static StreamPosition fromMetadata(Map<String, String> meta, String where) {
        String kind = require(meta, KIND, where);
        int chunks = (int) number(meta, "data.chunks-done", where);
        return switch (kind) {
            case "file" -> new InFile(number(meta, "data.epoch", where), new DataPosition<>(new ReadPosition(
                    number(meta, "data.record", where), number(meta, "data.byte-offset", where),
                    number(meta, "data.line", where)), chunks), shuffled(meta, where));
            case "kafka" -> {
                Map<Integer, Long> next = new TreeMap<>();
                for (String pair : require(meta, "data.offsets", where).split(",")) {
                    String[] po = pair.split(":");
                    try {
                        next.put(Integer.parseInt(po[0]), Long.parseLong(po[1]));
                    } catch (RuntimeException e) {
                        throw new IllegalArgumentException(where + ": data.offsets entry '" + pair
                                + "' is not partition:offset");
                    }
                }
                yield new InTopic(new DataPosition<>(new KafkaOffsets(require(meta, "data.topic", where), next),
                        chunks));
            }
            default -> throw new IllegalArgumentException(where + ": data.kind '" + kind + "' is not file or kafka");
        };
    }

    /** The position as it travels in a checkpoint manifest. */
    default dev.spiel4j.proto.v1.DataPosition toProto(String trainFile) {
        if (this instanceof InFile f) {
            return dev.spiel4j.proto.v1.DataPosition.newBuilder().setFile(FileCursor.newBuilder()
                    .setPath(trainFile).setEpoch((int) f.epoch()).setNextRecord(f.at().record().record())
                    .setNextByteOffset(f.at().record().byteOffset()).setShuffled(f.shuffled())).build();
        }
        InTopic t = (InTopic) this;
        KafkaCursor.Builder cursor = KafkaCursor.newBuilder().setTopic(t.at().record().topic());
        // by partition: KafkaOffsets' map has no order, the manifest should
        new TreeMap<>(t.at().record().next()).forEach((p, o) ->
                cursor.addPartitions(PartitionOffset.newBuilder().setPartition(p).setNextOffset(o)));
        return dev.spiel4j.proto.v1.DataPosition.newBuilder().setKafka(cursor).build();
    }

    /** Checkpoints written before {@code data.order} existed read their files in file order. */
    private static boolean shuffled(Map<String, String> meta, String where) {
        String order = meta.getOrDefault("data.order", FILE_ORDER);
        if (!order.equals(SHUFFLED) && !order.equals(FILE_ORDER)) {
            throw new IllegalArgumentException(where + ": data.order '" + order + "' is not " + SHUFFLED + " or "
                    + FILE_ORDER);
        }
        return order.equals(SHUFFLED);
    }

    private static String require(Map<String, String> meta, String key, String where) {
        String v = meta.get(key);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException(where + ": data position metadata '" + key + "' is missing");
        }
        return v;
    }

    private static long number(Map<String, String> meta, String key, String where) {
        String v = require(meta, key, where);
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where + ": data position metadata '" + key + "' is '" + v
                    + "', not a number");
        }
    }
}
