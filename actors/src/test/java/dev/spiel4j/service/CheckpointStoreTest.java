package dev.spiel4j.service;

import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.data.ReadPosition;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.peft.HostArrays;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.streams.DataPosition;
import dev.spiel4j.streams.KafkaOffsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checkpoints in the run directory: round trip of state, shapes and data position; pruning; validation. */
class CheckpointStoreTest {

    @TempDir
    Path runDir;

    private static MethodState state(int step) {
        return new MethodState("spiel-ag", step, Map.of(
                "w.values", HostArrays.f32("w.values", new long[]{2, 3}, new float[]{1, -2, 3.5f, 0, 5, step}),
                "w.age", HostArrays.i32("w.age", new int[]{0, step}),
                "w.indices", HostArrays.i64("w.indices", new long[]{4, 1L << 40})));
    }

    private static SparseFineTuning deltas(String base) {
        return new SparseFineTuning(base, "spiel-ag", Map.of("lr", "0.001"),
                List.of(new DeltaTensor("model.layers.0.mlp.up_proj", 4, 8, new long[]{3, 17}, new float[]{0.5f, -1})));
    }

    @Test
    void stateShapesAndFilePositionRoundTrip() {
        CheckpointStore store = new CheckpointStore(runDir, 0);
        StreamPosition at = new StreamPosition.InFile(2, new DataPosition<>(new ReadPosition(9, 1234, 10), 1), false);
        store.write("run-1", 7, deltas("base"), "none", state(8), at);
        SavedCheckpoint back = store.latest().orElseThrow();
        assertEquals("step-000008", back.id());
        assertEquals(8, back.step());
        assertEquals("base", back.baseFingerprint());
        assertEquals(at, back.position());
        assertEquals(8, back.state().step());
        for (Map.Entry<String, HostTensor> e : state(8).tensors().entrySet()) {
            HostTensor got = back.state().require(e.getKey());
            assertArrayEquals(e.getValue().shape(), got.shape(), e.getKey());
            assertEquals(e.getValue().dtype(), got.dtype(), e.getKey());
            assertEquals(e.getValue().data().duplicate().rewind(), got.data().duplicate().rewind(), e.getKey());
        }
    }

    @Test
    void shuffledFilePositionRoundTripsAndAnOlderCheckpointReadsAsFileOrder() {
        StreamPosition at = new StreamPosition.InFile(3, new DataPosition<>(new ReadPosition(9, 0, 0), 1), true);
        assertEquals(at, StreamPosition.fromMetadata(at.toMetadata(), "test"));
        assertTrue(at.toProto("train.jsonl").getFile().getShuffled());
        Map<String, String> older = new java.util.HashMap<>(
                new StreamPosition.InFile(3, new DataPosition<>(new ReadPosition(9, 1234, 10), 1), false).toMetadata());
        older.remove("data.order");
        assertFalse(((StreamPosition.InFile) StreamPosition.fromMetadata(older, "test")).shuffled());
        older.put("data.order", "random");
        assertThrows(IllegalArgumentException.class, () -> StreamPosition.fromMetadata(older, "state.bin"));
    }

    @Test
    void topicPositionRoundTripsThroughMetadata() {
        StreamPosition at = new StreamPosition.InTopic(new DataPosition<>(
                new KafkaOffsets("in", Map.of(0, 5L, 1, 12L, 2, 0L)), 0));
        assertEquals(at, StreamPosition.fromMetadata(at.toMetadata(), "test"));
        var proto = at.toProto("unused");
        assertEquals(3, proto.getKafka().getPartitionsCount());
        assertEquals(12, proto.getKafka().getPartitions(1).getNextOffset());
    }

    @Test
    void keepsTheNewestAndNeverRewritesAStep() throws Exception {
        CheckpointStore store = new CheckpointStore(runDir, 2);
        for (int step : new int[]{4, 8, 12}) {
            store.write("run-1", 7, deltas("base"), "none", state(step), StreamPosition.InFile.start(0, false));
        }
        assertEquals(List.of("step-000008", "step-000012"),
                store.checkpoints().stream().map(p -> p.getFileName().toString()).toList());
        long before = Files.getLastModifiedTime(store.dir().resolve("step-000012").resolve(CheckpointStore.STATE_FILE))
                .toMillis();
        Thread.sleep(20);
        store.write("run-1", 7, deltas("base"), "none", state(12), StreamPosition.InFile.start(0, false));
        assertEquals(before, Files.getLastModifiedTime(store.dir().resolve("step-000012")
                .resolve(CheckpointStore.STATE_FILE)).toMillis());
        try (var left = Files.list(store.dir())) {
            assertEquals(2, left.count(), "no temporary directory left behind");
        }
    }

    @Test
    void refusesAStateFileThatDisagreesWithItsDirectory() throws Exception {
        CheckpointStore store = new CheckpointStore(runDir, 0);
        SavedCheckpoint c = store.write("run-1", 7, deltas("base"), "none", state(4), StreamPosition.InFile.start(0, false));
        Path wrong = store.dir().resolve("step-000016");
        Files.move(c.deltaFile().getParent(), wrong);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, store::latest);
        assertTrue(e.getMessage().contains("step 4 does not match its directory step-000016"), e.getMessage());
    }

    @Test
    void refusesDeltaAndStateFilesOfDifferentBases() throws Exception {
        CheckpointStore store = new CheckpointStore(runDir, 0);
        SavedCheckpoint c = store.write("run-1", 7, deltas("base"), "none", state(4), StreamPosition.InFile.start(0, false));
        deltas("other").save(c.deltaFile());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, store::latest);
        assertTrue(e.getMessage().contains("disagree"), e.getMessage());
    }

    @Test
    void missingPositionMetadataIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StreamPosition.fromMetadata(Map.of("data.kind", "file", "data.chunks-done", "0"), "state.bin"));
        assertEquals("state.bin: data position metadata 'data.epoch' is missing", e.getMessage());
    }

    @Test
    void ageHistogramUsesPowerOfTwoBuckets() {
        var buckets = Telemetry.ageHistogram(List.of(new int[]{0, 0, 1, 2, 3}, new int[]{4, 7, 8, 100}));
        assertEquals(List.of("0-1:2", "1-2:1", "2-4:2", "4-8:2", "8-16:1", "16-32:0", "32-64:0", "64-128:1"), buckets.stream()
                .map(b -> b.getMinAge() + "-" + b.getMaxAge() + ":" + b.getCount()).toList());
    }
}
