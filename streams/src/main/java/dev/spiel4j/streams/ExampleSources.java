package dev.spiel4j.streams;

import dev.spiel4j.data.ExampleFileReader;
import dev.spiel4j.data.RawRecord;
import dev.spiel4j.data.ReadPosition;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.pekko.NotUsed;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.kafka.ConsumerSettings;
import org.apache.pekko.kafka.Subscriptions;
import org.apache.pekko.kafka.javadsl.Consumer;
import org.apache.pekko.stream.javadsl.Source;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/** Sources of raw example records, each record carrying the position to resume from. */
public final class ExampleSources {
    private ExampleSources() {
    }

    /**
     * The records of an example file from {@code from} (format by extension, see {@link ExampleFileReader}),
     * read on demand on Pekko's blocking-IO dispatcher; the file is closed when the stream ends or is cancelled.
     */
    public static Source<RawRecord<ReadPosition>, NotUsed> file(Path file, ReadPosition from) {
        return Source.unfoldResource(
                () -> ExampleFileReader.open(file, from),
                reader -> reader.hasNext() ? Optional.of(reader.next()) : Optional.empty(),
                ExampleFileReader::close);
    }

    /**
     * The records of an example file in the order {@code order} (indices into {@code starts}, the records' start
     * positions in the file), from index {@code from} of that order; each record's position is its index in the
     * order. Every record is read from its start on Pekko's blocking-IO dispatcher.
     */
    public static Source<RawRecord<ReadPosition>, NotUsed> inOrder(Path file, List<ReadPosition> starts, int[] order,
                                                                   long from) {
        return Source.unfoldResource(
                () -> new long[]{from},
                next -> next[0] < order.length ? Optional.of(readAt(file, starts, order, next[0]++)) : Optional.empty(),
                next -> { });
    }

    private static RawRecord<ReadPosition> readAt(Path file, List<ReadPosition> starts, int[] order, long index) {
        try (ExampleFileReader reader = ExampleFileReader.open(file, starts.get(order[(int) index]))) {
            RawRecord<ReadPosition> r = reader.next();
            return new RawRecord<>(r.sourceId(), r.bytes(), new ReadPosition(index, 0, 0),
                    new ReadPosition(index + 1, 0, 0));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + " at " + starts.get(order[(int) index]), e);
        }
    }

    /**
     * The records of a Kafka topic from explicit partition offsets (a manual assignment: no consumer group
     * offsets are read or committed; the position travels with the checkpoints). Each record's position is the
     * full offset map after it. A record without a value reaches the decoder as empty bytes (and is rejected).
     * Source ids are {@code topic-partition@offset}.
     */
    public static Source<RawRecord<KafkaOffsets>, Consumer.Control> kafka(ConsumerSettings<byte[], byte[]> settings,
                                                                          KafkaOffsets from) {
        // Auto-commit off whatever the settings say: the position lives in checkpoints, never in the broker.
        ConsumerSettings<byte[], byte[]> noCommit =
                settings.withProperty(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        return Consumer.plainSource(noCommit, Subscriptions.assignmentWithOffset(from.assignment()))
                .statefulMap(() -> from,
                        (KafkaOffsets at, ConsumerRecord<byte[], byte[]> r) -> {
                            KafkaOffsets next = at.after(r.partition(), r.offset());
                            byte[] value = r.value() == null ? new byte[0] : r.value();
                            String id = r.topic() + "-" + r.partition() + "@" + r.offset();
                            return Pair.create(next, new RawRecord<>(id, value, at, next));
                        },
                        at -> Optional.empty());
    }
}
