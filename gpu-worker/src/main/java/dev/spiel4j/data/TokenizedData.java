package dev.spiel4j.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A whole example file read, parsed and tokenized in memory, for the benchmarks' batch files and the {@code score}
 * command (which draw batches with a {@link ShuffledSampler} or in file order, and {@link Batches#pad}); the
 * service streams instead.
 *
 * @param examples the usable examples in file order
 * @param rejected the records that could not be used, in file order, with their reasons
 */
public record TokenizedData(List<TokenizedExample> examples, List<Rejected> rejected) {

    public TokenizedData {
        examples = List.copyOf(examples);
        rejected = List.copyOf(rejected);
    }

    /** Reads every record of {@code file} (format by extension, see {@link ExampleFileReader}). */
    public static TokenizedData load(Path file, ExampleEncoder encoder) throws IOException {
        List<TokenizedExample> examples = new ArrayList<>();
        List<Rejected> rejected = new ArrayList<>();
        try (ExampleFileReader reader = ExampleFileReader.open(file)) {
            while (reader.hasNext()) {
                RawRecord<ReadPosition> raw = reader.next();
                Parsed parsed = reader.decoder().decode(raw.sourceId(), raw.bytes());
                if (parsed instanceof Rejected r) {
                    rejected.add(r);
                    continue;
                }
                for (Encoded e : encoder.encode((Example) parsed)) {
                    if (e instanceof TokenizedExample t) {
                        examples.add(t);
                    } else {
                        rejected.add((Rejected) e);
                    }
                }
            }
        }
        return new TokenizedData(examples, rejected);
    }
}
