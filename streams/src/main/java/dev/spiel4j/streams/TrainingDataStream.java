package dev.spiel4j.streams;

import dev.spiel4j.data.Batches;
import dev.spiel4j.data.Encoded;
import dev.spiel4j.data.Example;
import dev.spiel4j.data.ExampleEncoder;
import dev.spiel4j.data.ExampleFileReader;
import dev.spiel4j.data.Parsed;
import dev.spiel4j.data.RawRecord;
import dev.spiel4j.data.ReadPosition;
import dev.spiel4j.data.RecordDecoder;
import dev.spiel4j.data.Rejected;
import dev.spiel4j.data.TokenizedExample;
import org.apache.pekko.NotUsed;
import org.apache.pekko.stream.javadsl.Flow;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The training data graph: records -> parse and validate -> tokenize -> pad -> batch, with backpressure end to
 * end (a batch is read, parsed and tokenized only when downstream asks for it, plus the small buffers at async
 * boundaries). Records that cannot be used go to the dead-letter sink with their reason and source position
 * while the stream goes on; the dead-letter sink backpressures the stream like the main output does.
 *
 * <p>Order is the source's order. Batches hold {@link BatchShape#batchSize()} examples; only the last batch of
 * a finite source is smaller, and on an endless source (a topic) a batch waits until it is full. Each batch
 * carries the position after its last example, so a stream started from it yields exactly the examples that
 * follow (rejected records between the last example and the resume point are read, and dead-lettered, again).
 * The parsing and tokenizing are the pure functions of {@code dev.spiel4j.data}; nothing is re-implemented here.
 */
public final class TrainingDataStream {
    private TrainingDataStream() {
    }

    /** Batches from an example file (txt, json, jsonl), starting at {@code from}. */
    public static Source<BatchWithPosition<ReadPosition>, NotUsed> fromFile(
            Path file, DataPosition<ReadPosition> from, ExampleEncoder encoder, BatchShape shape,
            Sink<Rejected, ?> deadLetters) {
        RecordDecoder decoder = ExampleFileReader.Format.of(file).decoder();
        return batches(ExampleSources.file(file, from.record()), decoder, encoder, shape, from, deadLetters);
    }

    /**
     * Batches from any record source; {@code records} must start at {@code from.record()} (the chunks already
     * done of that first record are dropped here).
     */
    public static <P, M> Source<BatchWithPosition<P>, M> batches(
            Source<RawRecord<P>, M> records, RecordDecoder decoder, ExampleEncoder encoder, BatchShape shape,
            DataPosition<P> from, Sink<Rejected, ?> deadLetters) {
        Sink<Parsed, NotUsed> parseRejects = Flow.<Parsed>create().map(p -> (Rejected) p).to(deadLetters);
        Sink<Piece<P>, NotUsed> encodeRejects =
                Flow.<Piece<P>>create().map(p -> (Rejected) p.encoded()).to(deadLetters);
        return records
                .map(r -> new ParsedRecord<>(r, decoder.decode(r.sourceId(), r.bytes())))
                .divertTo(Flow.<ParsedRecord<P>>create().map(ParsedRecord::parsed).to(parseRejects),
                        r -> r.parsed() instanceof Rejected)
                .mapConcat(r -> encode(r, encoder, from))
                .divertTo(encodeRejects, p -> p.encoded() instanceof Rejected)
                .grouped(shape.batchSize())
                .map(pieces -> toBatch(pieces, shape));
    }

    /** A record and what parsing made of it. */
    private record ParsedRecord<P>(RawRecord<P> raw, Parsed parsed) {
    }

    /** One encoded piece of a record and the position after it. */
    private record Piece<P>(Encoded encoded, DataPosition<P> after) {
    }

    private static <P> List<Piece<P>> encode(ParsedRecord<P> r, ExampleEncoder encoder, DataPosition<P> from) {
        List<Encoded> encoded = encoder.encode((Example) r.parsed());
        int skip = r.raw().at().equals(from.record()) ? from.chunksDone() : 0;
        List<Piece<P>> pieces = new ArrayList<>(encoded.size());
        for (int k = skip; k < encoded.size(); k++) {
            DataPosition<P> after = k == encoded.size() - 1
                    ? DataPosition.at(r.raw().next())
                    : new DataPosition<>(r.raw().at(), k + 1);
            pieces.add(new Piece<>(encoded.get(k), after));
        }
        return pieces;
    }

    private static <P> BatchWithPosition<P> toBatch(List<Piece<P>> pieces, BatchShape shape) {
        List<TokenizedExample> rows = pieces.stream().map(p -> (TokenizedExample) p.encoded()).toList();
        return new BatchWithPosition<>(Batches.pad(rows, shape.seqLen()), pieces.get(pieces.size() - 1).after());
    }
}
