package dev.spiel4j.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Reads and writes the <a href="https://github.com/huggingface/safetensors">safetensors</a> format: an 8-byte
 * little-endian header length, a JSON header mapping each tensor name to {@code dtype}, {@code shape} and
 * {@code data_offsets} (relative to the data region that follows the header) plus an optional
 * {@code __metadata__} string map, then the raw little-endian tensor bytes.
 *
 * <p>The reader validates the whole header against the file size before it maps anything, and maps the file
 * instead of copying it, so opening a multi-gigabyte checkpoint costs no heap. The writer produces files that the
 * Python {@code safetensors} package reads (header padded with spaces to 8 bytes) and replaces the target
 * atomically, so a crash never leaves a half-written checkpoint under the final name.
 */
public final class SafeTensors {

    /** The Python implementation refuses headers above 100 MB; so do we, before allocating the header buffer. */
    public static final long MAX_HEADER_BYTES = 100L * 1000 * 1000;

    private static final String METADATA_KEY = "__metadata__";
    private static final ObjectMapper JSON = JsonFiles.MAPPER;

    private SafeTensors() {
    }

    /**
     * A validated file: its metadata and its tensors in header order. The tensors' buffers are read-only views of
     * the memory-mapped file; they stay valid after reading returns.
     */
    public record Contents(Path file, Map<String, String> metadata, Map<String, HostTensor> tensors) {
        public Contents {
            metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
            tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        }

        /** The tensor with this name, or a {@link ModelFormatException} naming the file and the tensor. */
        public HostTensor require(String name) {
            HostTensor t = tensors.get(name);
            if (t == null) {
                throw new ModelFormatException(file, "tensor '" + name + "' is missing");
            }
            return t;
        }
    }

    private record Entry(String name, HostDType dtype, long[] shape, long begin, long end) {
    }

    /**
     * Refuses a file that {@code torch.save} wrote (see {@link #isPyTorchPickle}), saying how to re-save it as
     * safetensors; does nothing for any other file.
     */
    public static void refusePyTorchPickle(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            if (ch.size() >= 8 && isPyTorchPickle(readFully(ch, 0, 8))) {
                throw pickleRefused(file);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static ModelFormatException pickleRefused(Path file) {
        return new ModelFormatException(file, "is a PyTorch pickle (torch.save), which spiel4j never loads"
                + " (unpickling runs code); re-save it as safetensors in Python: from safetensors.torch import"
                + " save_file; import torch; save_file(torch.load('" + file.getFileName() + "',"
                + " weights_only=True), 'adapter_model.safetensors')");
    }

    /**
     * Whether a file that is no safetensors file starts as {@code torch.save} writes: a zip archive (PyTorch 1.6 and
     * later, {@code PK\3\4}) or a bare pickle (protocol 2 to 5: {@code 0x80} and the protocol number).
     */
    private static boolean isPyTorchPickle(ByteBuffer head) {
        boolean zip = head.get(0) == 'P' && head.get(1) == 'K' && head.get(2) == 3 && head.get(3) == 4;
        return zip || ((head.get(0) & 0xFF) == 0x80 && head.get(1) >= 2 && head.get(1) <= 5);
    }

    /** Reads and validates a safetensors file; every problem is reported as a {@link ModelFormatException}. */
    public static Contents read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new ModelFormatException(file, "file is " + size + " bytes, too short for a safetensors header");
            }
            ByteBuffer head = readFully(ch, 0, 8);
            long headerLength = head.order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            boolean invalidLength = headerLength < 2 || headerLength > MAX_HEADER_BYTES || 8 + headerLength > size;
            if (invalidLength && isPyTorchPickle(head)) {
                throw pickleRefused(file);
            }
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
                throw new ModelFormatException(file, "header length " + headerLength
                        + " is outside [2, " + MAX_HEADER_BYTES + "] (not a safetensors file?)");
            }
            if (8 + headerLength > size) {
                throw new ModelFormatException(file, "header length " + headerLength + " runs past the end of the "
                        + size + "-byte file (truncated?)");
            }
            ByteBuffer headerBytes = readFully(ch, 8, (int) headerLength);
            JsonNode header = parseHeader(file, headerBytes);
            long dataStart = 8 + headerLength;
            long dataLength = size - dataStart;

            Map<String, String> metadata = new LinkedHashMap<>();
            List<Entry> entries = new ArrayList<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> field = it.next();
                if (field.getKey().equals(METADATA_KEY)) {
                    metadata.putAll(parseMetadata(file, field.getValue()));
                } else {
                    entries.add(parseEntry(file, field.getKey(), field.getValue(), dataLength));
                }
            }
            checkNoOverlap(file, entries);
            return new Contents(file, metadata, map(file, ch, dataStart, dataLength, entries));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static JsonNode parseHeader(Path file, ByteBuffer headerBytes) {
        String text = StandardCharsets.UTF_8.decode(headerBytes).toString();
        JsonNode header;
        try {
            header = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(file, "header is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (header == null || !header.isObject()) {
            throw new ModelFormatException(file, "header is not a JSON object");
        }
        return header;
    }

    private static Map<String, String> parseMetadata(Path file, JsonNode node) {
        if (!node.isObject()) {
            throw new ModelFormatException(file, METADATA_KEY + " is not a JSON object");
        }
        Map<String, String> out = new LinkedHashMap<>();
        node.fields().forEachRemaining(e -> {
            if (!e.getValue().isTextual()) {
                throw new ModelFormatException(file, METADATA_KEY + " entry '" + e.getKey() + "' is not a string");
            }
            out.put(e.getKey(), e.getValue().asText());
        });
        return out;
    }

    private static Entry parseEntry(Path file, String name, JsonNode node, long dataLength) {
        String where = "tensor '" + name + "': ";
        if (!node.isObject()) {
            throw new ModelFormatException(file, where + "header entry is not a JSON object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new ModelFormatException(file, where + "missing string field 'dtype'");
        }
        HostDType dtype = dtypeOf(file, name, dtypeNode.asText());
        long[] shape = longArray(file, where + "field 'shape'", node.get("shape"), -1);
        long[] offsets = longArray(file, where + "field 'data_offsets'", node.get("data_offsets"), 2);
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end || end > dataLength) {
            throw new ModelFormatException(file, where + "data_offsets [" + begin + ", " + end
                    + "] do not lie inside the " + dataLength + "-byte data region (truncated file or lying header)");
        }
        long expected;
        try {
            expected = Math.multiplyExact(HostTensor.numel(shape), dtype.bytes());
        } catch (ArithmeticException e) {
            throw new ModelFormatException(file, where + "shape " + Arrays.toString(shape) + " overflows");
        }
        if (end - begin != expected) {
            throw new ModelFormatException(file, where + "shape " + Arrays.toString(shape) + " " + dtype + " needs "
                    + expected + " bytes but data_offsets [" + begin + ", " + end + "] span " + (end - begin));
        }
        if (expected > Integer.MAX_VALUE) {
            throw new ModelFormatException(file, where + expected + " bytes is more than one buffer can hold (2 GiB)");
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    private static HostDType dtypeOf(Path file, String tensor, String name) {
        for (HostDType d : HostDType.values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        throw new ModelFormatException(file, "tensor '" + tensor + "': dtype " + name
                + " is not supported (supported: " + Arrays.toString(HostDType.values()) + ")");
    }

    /** A JSON array of non-negative integers; {@code length} -1 accepts any length. */
    private static long[] longArray(Path file, String what, JsonNode node, int length) {
        if (node == null || !node.isArray() || (length >= 0 && node.size() != length)) {
            throw new ModelFormatException(file, what + " must be an array" + (length >= 0 ? " of " + length : "")
                    + " non-negative integers, got " + node);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
                throw new ModelFormatException(file, what + " must hold non-negative integers, got " + node);
            }
            out[i] = v.asLong();
        }
        return out;
    }

    private static void checkNoOverlap(Path file, List<Entry> entries) {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        for (int i = 1; i < sorted.size(); i++) {
            Entry prev = sorted.get(i - 1);
            Entry cur = sorted.get(i);
            if (cur.begin() < prev.end()) {
                throw new ModelFormatException(file, "tensors '" + prev.name() + "' [" + prev.begin() + ", "
                        + prev.end() + "] and '" + cur.name() + "' [" + cur.begin() + ", " + cur.end() + "] overlap");
            }
        }
    }

    private static Map<String, HostTensor> map(Path file, FileChannel ch, long dataStart, long dataLength,
                                               List<Entry> entries) throws IOException {
        // One mapping for the whole data region when it fits a buffer, else one per tensor.
        ByteBuffer region = dataLength <= Integer.MAX_VALUE && dataLength > 0
                ? ch.map(FileChannel.MapMode.READ_ONLY, dataStart, dataLength) : null;
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (Entry e : entries) {
            int length = (int) (e.end() - e.begin());
            ByteBuffer bytes;
            if (length == 0) {
                bytes = ByteBuffer.allocate(0);
            } else if (region != null) {
                bytes = region.slice((int) e.begin(), length);
            } else {
                bytes = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + e.begin(), length);
            }
            out.put(e.name(), new HostTensor(e.name(), e.shape(), e.dtype(), bytes.order(ByteOrder.LITTLE_ENDIAN)));
        }
        return out;
    }

    private static ByteBuffer readFully(FileChannel ch, long position, int length) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(length);
        while (buf.hasRemaining()) {
            if (ch.read(buf, position + buf.position()) < 0) {
                throw new IOException("unexpected end of file");
            }
        }
        return buf.flip();
    }

    /**
     * A tensor to write whose bytes are produced only when its turn comes, so a writer holds one tensor in memory
     * at a time (e.g. a merged export of a large model).
     */
    public record PendingTensor(String name, HostDType dtype, long[] shape, Supplier<ByteBuffer> bytes) {
        public PendingTensor {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }
    }

    /**
     * Writes tensors (in the given order) and string metadata to {@code file}, replacing it atomically
     * ({@link AtomicFiles}).
     *
     * @throws IllegalArgumentException for duplicate or reserved tensor names
     */
    public static void write(Path file, Collection<HostTensor> tensors, Map<String, String> metadata) {
        writePending(file, tensors.stream()
                .map(t -> new PendingTensor(t.name(), t.dtype(), t.shape(), t::data)).toList(), metadata);
    }

    /**
     * Like {@link #write} with bytes produced on demand; each produced buffer must hold exactly the bytes its
     * shape and dtype need.
     */
    public static void writePending(Path file, List<PendingTensor> tensors, Map<String, String> metadata) {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject(METADATA_KEY);
            metadata.forEach(meta::put);
        }
        Set<String> names = new HashSet<>();
        long offset = 0;
        for (PendingTensor t : tensors) {
            if (t.name().equals(METADATA_KEY) || !names.add(t.name())) {
                throw new IllegalArgumentException("cannot write " + file + ": tensor name '" + t.name()
                        + "' is " + (t.name().equals(METADATA_KEY) ? "reserved" : "used twice"));
            }
            ObjectNode entry = header.putObject(t.name());
            entry.put("dtype", t.dtype().name());
            ArrayNode shape = entry.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            long length = HostTensor.numel(t.shape()) * t.dtype().bytes();
            entry.putArray("data_offsets").add(offset).add(offset + length);
            offset += length;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8; // 8 + header stays 8-byte aligned, as the Python writer does
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();

        AtomicFiles.write(file, ch -> {
            AtomicFiles.writeFully(ch, head);
            for (PendingTensor t : tensors) {
                // HostTensor's constructor checks that the produced bytes match the declared shape and dtype.
                HostTensor checked = new HostTensor(t.name(), t.shape(), t.dtype(), t.bytes().get());
                AtomicFiles.writeFully(ch, checked.data().duplicate());
            }
        });
    }
}
