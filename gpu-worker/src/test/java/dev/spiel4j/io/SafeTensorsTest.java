package dev.spiel4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {
    @TempDir
    Path dir;

    static HostTensor tensor(String name, HostDType dtype, long[] shape, long seed) {
        int bytes = (int) (HostTensor.numel(shape) * dtype.bytes());
        byte[] data = new byte[bytes];
        new java.util.Random(seed).nextBytes(data);
        return new HostTensor(name, shape, dtype, ByteBuffer.wrap(data));
    }

    static byte[] bytes(HostTensor t) {
        ByteBuffer b = t.data().duplicate();
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /** A file with a hand-written header, for the tests that need a lying one. */
    Path craft(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path p = dir.resolve("crafted.safetensors");
        Files.write(p, b.array());
        return p;
    }

    String error(Path p) {
        return assertThrows(ModelFormatException.class, () -> SafeTensors.read(p)).getMessage();
    }

    @Test
    void roundTripsEveryDtypeBitwiseWithMetadata() throws IOException {
        List<HostTensor> ts = List.of(
                tensor("a.weight", HostDType.F32, new long[]{3, 5}, 1),
                tensor("b", HostDType.F16, new long[]{7}, 2),
                tensor("c", HostDType.BF16, new long[]{2, 2, 3}, 3),
                tensor("d.indices", HostDType.I32, new long[]{9}, 4),
                tensor("e", HostDType.I64, new long[]{1}, 5),
                tensor("scalar", HostDType.F32, new long[]{}, 6),
                tensor("empty", HostDType.F32, new long[]{0, 4}, 7));
        Path p = dir.resolve("x.safetensors");
        SafeTensors.write(p, ts, Map.of("format", "pt", "note", "ünïcode"));

        long headerLength = ByteBuffer.wrap(Files.readAllBytes(p), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + headerLength) % 8, "data region must start 8-byte aligned");
        SafeTensors.Contents c = SafeTensors.read(p);
        assertEquals(Map.of("format", "pt", "note", "ünïcode"), c.metadata());
        assertEquals(ts.stream().map(HostTensor::name).toList(), List.copyOf(c.tensors().keySet()));
        for (HostTensor t : ts) {
            HostTensor back = c.require(t.name());
            assertEquals(t.dtype(), back.dtype());
            assertArrayEquals(t.shape(), back.shape());
            assertArrayEquals(bytes(t), bytes(back), t.name());
        }
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(p), files.toList(), "no temporary file may be left behind");
        }
    }

    @Test
    void readsTheFileThatPythonWrote() throws IOException {
        Path p = SharedAssets.file("model/stories260K-hf/model.safetensors");
        SafeTensors.Contents c = SafeTensors.read(p);
        assertEquals(1 + 5 * 9 + 1, c.tensors().size(), "embedding, 5 blocks of 9, final norm");
        assertEquals(Map.of("format", "pt"), c.metadata());
        HostTensor q = c.require("model.layers.0.self_attn.q_proj.weight");
        assertArrayEquals(new long[]{64, 64}, q.shape());
        // Independent of the reader: the header says q_proj starts at data offset 288256.
        byte[] raw = Files.readAllBytes(p);
        long n = ByteBuffer.wrap(raw, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        float first = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getFloat((int) (8 + n + 288256));
        assertEquals(first, q.toFloats()[0], 0f);
    }

    @Test
    void refusesATruncatedFileNamingTheTensor() throws IOException {
        byte[] full = Files.readAllBytes(SharedAssets.file("model/stories260K-hf/model.safetensors"));
        Path p = dir.resolve("cut.safetensors");
        Files.write(p, Arrays.copyOf(full, full.length - 100));
        String m = error(p);
        assertTrue(m.startsWith(p.toString()), m);
        assertTrue(m.contains("tensor 'model.norm.weight'") && m.contains("data region"), m);

        Files.write(p, Arrays.copyOf(full, 200));
        assertTrue(error(p).contains("runs past the end"), error(p));
        Files.write(p, Arrays.copyOf(full, 5));
        assertTrue(error(p).contains("too short"), error(p));
    }

    @Test
    void refusesHeadersThatLie() throws IOException {
        String m = error(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16));
        assertTrue(m.contains("tensor 'w'") && m.contains("needs 16 bytes") && m.contains("span 12"), m);

        m = error(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12));
        assertTrue(m.contains("'w'") && m.contains("'v'") && m.contains("overlap"), m);

        m = error(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 16));
        assertTrue(m.contains("tensor 'w'") && m.contains("[8, 24]") && m.contains("16-byte data region"), m);

        m = error(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16));
        assertTrue(m.contains("tensor 'w'") && m.contains("shape"), m);

        m = error(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16));
        assertTrue(m.contains("tensor 'w'") && m.contains("data_offsets"), m);
    }

    @Test
    void refusesUnsupportedDtypesByName() throws IOException {
        String m = error(craft("{\"w\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16));
        assertTrue(m.contains("tensor 'w'") && m.contains("dtype F64 is not supported"), m);
        m = error(craft("{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2));
        assertTrue(m.contains("dtype U8 is not supported"), m);
    }

    @Test
    void refusesPyTorchPicklesSayingHowToResaveThem() throws IOException {
        // what torch.save writes: a zip archive (PyTorch >= 1.6), or a bare pickle (protocol 2: 0x80 0x02)
        for (byte[] start : List.of(new byte[]{'P', 'K', 3, 4, 0x14, 0, 8, 8, 0, 0}, new byte[]{(byte) 0x80, 2, 'c', 't', 'o', 'r', 'c', 'h'})) {
            Path bin = dir.resolve("adapter_model.bin");
            Files.write(bin, start);
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> SafeTensors.read(bin));
            assertTrue(e.getMessage().contains("PyTorch pickle") && e.getMessage().contains("save_file"),
                    e.getMessage());
        }
    }

    @Test
    void refusesMalformedJson() throws IOException {
        assertTrue(error(craft("{\"w\": [", 0)).contains("not valid JSON"));
        assertTrue(error(craft("[1, 2]", 0)).contains("not a JSON object"));
        assertTrue(error(craft("{\"__metadata__\":{\"k\":1}}", 0)).contains("'k' is not a string"));
        String dup = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        assertTrue(error(craft(dup, 4)).contains("not valid JSON"), "duplicate names are refused");
        Path p = dir.resolve("huge.safetensors");
        Files.write(p, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE).array());
        assertTrue(error(p).contains("header length"), error(p));
    }

    @Test
    void aFailedWriteLeavesTheOldFileIntact() throws IOException {
        Path p = dir.resolve("keep.safetensors");
        HostTensor t = tensor("t", HostDType.F32, new long[]{4}, 9);
        SafeTensors.write(p, List.of(t), Map.of());
        byte[] before = Files.readAllBytes(p);
        assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(p, List.of(t, t), Map.of()));
        assertArrayEquals(before, Files.readAllBytes(p));
    }

    @Test
    void pendingTensorsAreProducedOnWriteAndChecked() throws IOException {
        HostTensor t = tensor("t", HostDType.F32, new long[]{2, 2}, 10);
        Path p = dir.resolve("lazy.safetensors");
        SafeTensors.writePending(p, List.of(new SafeTensors.PendingTensor("t", HostDType.F32, t.shape(), t::data)),
                Map.of());
        assertArrayEquals(bytes(t), bytes(SafeTensors.read(p).require("t")));

        Path bad = dir.resolve("lying.safetensors");
        var e = assertThrows(IllegalArgumentException.class, () -> SafeTensors.writePending(bad,
                List.of(new SafeTensors.PendingTensor("t", HostDType.F32, new long[]{3}, t::data)), Map.of()));
        assertTrue(e.getMessage().contains("tensor 't'"), e.getMessage());
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(p), files.toList(), "a failed write leaves neither the target nor a temporary file");
        }
    }
}
