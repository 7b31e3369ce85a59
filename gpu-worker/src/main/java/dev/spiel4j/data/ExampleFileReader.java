package dev.spiel4j.data;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.Locale;
import java.util.NoSuchElementException;

/**
 * Streams the records of an example file one at a time, from any {@link ReadPosition} it handed out, so that a
 * resumed run neither loses nor repeats records. The format follows the extension:
 * <ul>
 *   <li>{@code .txt}: paragraphs separated by one or more blank lines; id {@code name:line} (1-based first line);
 *       resumes at a byte offset.</li>
 *   <li>{@code .jsonl}: one JSON record per non-blank line; id {@code name:line}; resumes at a byte offset.</li>
 *   <li>{@code .json}: a JSON array of records, read with a streaming parser; id {@code name#index} (0-based);
 *       resumes at a record index (the skipped records are scanned, not built). A broken array (malformed JSON
 *       between records, invalid UTF-8) cannot be re-synchronised: {@link #next()} then throws
 *       {@link UncheckedIOException} naming the file, line and column.</li>
 * </ul>
 * A record's bytes are not decoded here: {@link #decoder()} does that and rejects bad records one by one.
 * Not thread-safe; close it to release the file.
 */
public final class ExampleFileReader implements Iterator<RawRecord<ReadPosition>>, Closeable {

    /** File formats by extension. */
    public enum Format {
        TEXT(ExampleParser.TEXT), JSON_LINES(ExampleParser.JSON), JSON_ARRAY(ExampleParser.JSON);

        private final RecordDecoder decoder;

        Format(RecordDecoder decoder) {
            this.decoder = decoder;
        }

        /** The decoder for this format's records. */
        public RecordDecoder decoder() {
            return decoder;
        }

        /** The format of a file from its extension; fails naming the file for anything else. */
        public static Format of(Path file) {
            String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
            if (name.endsWith(".txt")) {
                return TEXT;
            }
            if (name.endsWith(".jsonl")) {
                return JSON_LINES;
            }
            if (name.endsWith(".json")) {
                return JSON_ARRAY;
            }
            throw new IllegalArgumentException("unsupported example file " + file
                    + ": expected .txt (paragraphs), .jsonl (JSON lines) or .json (a JSON array)");
        }
    }

    /** A line or paragraph longer than this is no training example: the file is refused before it fills memory. */
    public static final int MAX_RECORD_BYTES = 64 << 20;

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final Path file;
    private final String name;
    private final Format format;
    private final InputStream in;
    private final JsonParser json;
    private ReadPosition position;
    private RawRecord<ReadPosition> pending;
    private boolean ended;

    private ExampleFileReader(Path file, Format format, InputStream in, JsonParser json, ReadPosition position) {
        this.file = file;
        this.name = file.getFileName().toString();
        this.format = format;
        this.in = in;
        this.json = json;
        this.position = position;
    }

    /** Opens {@code file} at the start. */
    public static ExampleFileReader open(Path file) throws IOException {
        return open(file, ReadPosition.START);
    }

    /**
     * Opens {@code file} to read on from {@code from}, a position this reader handed out for the same file
     * ({@link RawRecord#next()}); a position that cannot be one (past the end, not at a line start) is refused.
     */
    public static ExampleFileReader open(Path file, ReadPosition from) throws IOException {
        Format format = Format.of(file);
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("example file " + file + " does not exist or is not a file");
        }
        if (format == Format.JSON_ARRAY) {
            return openArray(file, from);
        }
        FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        try {
            checkLineStart(file, channel, from.byteOffset());
            channel.position(from.byteOffset());
            InputStream in = new BufferedInputStream(Channels.newInputStream(channel), 1 << 16);
            return new ExampleFileReader(file, format, in, null, from);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static void checkLineStart(Path file, FileChannel channel, long offset) throws IOException {
        long size = channel.size();
        if (offset > size) {
            throw new IllegalArgumentException("cannot resume " + file + " at byte " + offset
                    + ": the file has only " + size + " bytes (a different file?)");
        }
        if (offset > 0) {
            ByteBuffer b = ByteBuffer.allocate(1);
            channel.read(b, offset - 1);
            if (b.get(0) != '\n') {
                throw new IllegalArgumentException("cannot resume " + file + " at byte " + offset
                        + ": it is not the start of a line (a different file?)");
            }
        }
    }

    private static ExampleFileReader openArray(Path file, ReadPosition from) throws IOException {
        InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
        JsonParser parser = new JsonFactory().createParser(in);
        try {
            if (parser.nextToken() != JsonToken.START_ARRAY) {
                throw new IllegalArgumentException("example file " + file + " must hold a JSON array of records, "
                        + "found " + parser.currentToken() + " at line " + parser.currentTokenLocation().getLineNr());
            }
            for (long skipped = 0; skipped < from.record(); skipped++) {
                JsonToken t = parser.nextToken();
                if (t == JsonToken.END_ARRAY || t == null) {
                    throw new IllegalArgumentException("cannot resume " + file + " at record " + from.record()
                            + ": the array has only " + skipped + " records (a different file?)");
                }
                parser.skipChildren();
            }
            return new ExampleFileReader(file, Format.JSON_ARRAY, in, parser, from);
        } catch (IOException | RuntimeException e) {
            parser.close();
            throw e;
        }
    }

    /** The decoder for this file's records. */
    public RecordDecoder decoder() {
        return format.decoder();
    }

    public Format format() {
        return format;
    }

    /** Where the next record is read from (after the last one returned). */
    public ReadPosition position() {
        return pending != null ? pending.at() : position;
    }

    @Override
    public boolean hasNext() {
        if (pending == null && !ended) {
            try {
                pending = format == Format.JSON_ARRAY ? readArrayElement() : readLines();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
            }
            ended = pending == null;
        }
        return pending != null;
    }

    @Override
    public RawRecord<ReadPosition> next() {
        if (!hasNext()) {
            throw new NoSuchElementException("no more records in " + file);
        }
        RawRecord<ReadPosition> r = pending;
        pending = null;
        position = r.next();
        return r;
    }

    /** Text: the next paragraph; JSON lines: the next non-blank line. Blank lines advance the position only. */
    private RawRecord<ReadPosition> readLines() throws IOException {
        long offset = position.byteOffset();
        long line = position.line();
        ByteArrayOutputStream record = new ByteArrayOutputStream();
        ReadPosition at = null;
        ByteArrayOutputStream lineBytes = new ByteArrayOutputStream();
        while (true) {
            lineBytes.reset();
            long read = readLine(lineBytes, line);
            if (read < 0) {
                break;
            }
            boolean blank = isBlank(lineBytes);
            if (blank && at != null) {
                // A blank line ends the paragraph; it is consumed so the next record starts after it.
                offset += read;
                line++;
                break;
            }
            if (!blank) {
                if (at == null) {
                    at = new ReadPosition(position.record(), offset, line);
                } else {
                    record.write('\n');
                }
                if (record.size() + lineBytes.size() > MAX_RECORD_BYTES) {
                    throw new IOException("the record at line " + (at.line() + 1) + " is longer than "
                            + MAX_RECORD_BYTES + " bytes");
                }
                record.write(lineBytes.toByteArray());
            }
            offset += read;
            line++;
            if (!blank && format == Format.JSON_LINES) {
                break;
            }
        }
        if (at == null) {
            return null;
        }
        ReadPosition next = new ReadPosition(position.record() + 1, offset, line);
        return new RawRecord<>(name + ":" + (at.line() + 1), record.toByteArray(), at, next);
    }

    /**
     * Reads line {@code line} (0-based) without its terminator ({@code \n}, and a {@code \r} before it);
     * returns the bytes consumed, or -1 at the end of the file.
     */
    private long readLine(ByteArrayOutputStream out, long line) throws IOException {
        long consumed = 0;
        int b;
        while ((b = in.read()) >= 0) {
            consumed++;
            if (b == '\n') {
                break;
            }
            if (out.size() == MAX_RECORD_BYTES) {
                throw new IOException("line " + (line + 1) + " is longer than " + MAX_RECORD_BYTES + " bytes");
            }
            out.write(b);
        }
        if (consumed == 0) {
            return -1;
        }
        byte[] bytes = out.toByteArray();
        if (bytes.length > 0 && bytes[bytes.length - 1] == '\r') {
            out.reset();
            out.write(bytes, 0, bytes.length - 1);
        }
        return consumed;
    }

    private static boolean isBlank(ByteArrayOutputStream line) {
        for (byte b : line.toByteArray()) {
            if (b != ' ' && b != '\t' && b != '\r') {
                return false;
            }
        }
        return true;
    }

    private RawRecord<ReadPosition> readArrayElement() throws IOException {
        JsonToken t;
        try {
            t = json.nextToken();
        } catch (IOException e) {
            throw broken(e);
        }
        if (t == JsonToken.END_ARRAY || t == null) {
            return null;
        }
        JsonLocation loc = json.currentTokenLocation();
        ReadPosition at = new ReadPosition(position.record(), Math.max(0, loc.getByteOffset()), loc.getLineNr() - 1);
        JsonNode element;
        try {
            element = MAPPER.readTree(json);
        } catch (IOException e) {
            throw broken(e);
        }
        JsonLocation after = json.currentLocation();
        ReadPosition next = new ReadPosition(position.record() + 1, Math.max(0, after.getByteOffset()),
                after.getLineNr() - 1);
        // Re-serialised so that every source hands the decoder bytes; the element is small.
        return new RawRecord<>(name + "#" + position.record(), MAPPER.writeValueAsBytes(element), at, next);
    }

    private IOException broken(IOException e) {
        JsonLocation loc = json.currentLocation();
        return new IOException("broken JSON array after record " + position.record() + " at line "
                + loc.getLineNr() + ", column " + loc.getColumnNr() + ": " + e.getMessage(), e);
    }

    @Override
    public void close() throws IOException {
        if (json != null) {
            json.close();
        }
        in.close();
    }
}
