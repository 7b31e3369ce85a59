package dev.spiel4j.data;

/**
 * A place in an example file from which {@link ExampleFileReader} reads on.
 *
 * @param record     records already read before this place (the key for resuming a JSON array)
 * @param byteOffset byte offset of the next line (the key for resuming text and JSON lines files)
 * @param line       0-based line number at {@code byteOffset} (for source ids after a resume)
 */
public record ReadPosition(long record, long byteOffset, long line) {

    /** The beginning of a file. */
    public static final ReadPosition START = new ReadPosition(0, 0, 0);

    public ReadPosition {
        if (record < 0 || byteOffset < 0 || line < 0) {
            throw new IllegalArgumentException("negative read position: record " + record + ", byte offset "
                    + byteOffset + ", line " + line);
        }
    }
}
