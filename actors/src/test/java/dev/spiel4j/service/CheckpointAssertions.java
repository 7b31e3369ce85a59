package dev.spiel4j.service;

import dev.spiel4j.checkpoint.DeltaTensor;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.checkpoint.TrainingStateFile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Bit-for-bit comparison of two checkpoints of runs with the same seed, data and configuration: the promise is that
 * an interrupted and resumed run ends exactly where the uninterrupted one does, so nothing here has a tolerance.
 */
public final class CheckpointAssertions {
    /** The one metadata entry that may differ: it names the run that wrote the state file. */
    private static final String RUN_ID = "run_id";

    private CheckpointAssertions() {
    }

    /**
     * {@code actual} (a {@code step-NNNNNN} directory) holds the same training as {@code expected}: the sparse
     * fine-tuning file byte for byte, and a training-state file with the same metadata but the run id (step, data
     * position, seed, base fingerprint, tensor shapes) and every state tensor (deltas, optimizer moments, slot ages,
     * candidate statistics) bit for bit. The decoded comparisons come first so that a failure says which tensor
     * differs and by how much.
     */
    public static void assertSameCheckpoint(Path expected, Path actual) throws IOException {
        String where = actual + " against " + expected;
        SparseFineTuning expectedSft = SparseFineTuning.load(expected.resolve(CheckpointStore.DELTA_FILE));
        SparseFineTuning actualSft = SparseFineTuning.load(actual.resolve(CheckpointStore.DELTA_FILE));
        assertEquals(expectedSft.baseFingerprint(), actualSft.baseFingerprint(), where + ": base fingerprint");
        assertEquals(expectedSft.method(), actualSft.method(), where + ": method");
        assertEquals(expectedSft.hyperparameters(), actualSft.hyperparameters(), where + ": hyperparameters");
        List<DeltaTensor> expectedDeltas = expectedSft.deltas();
        List<DeltaTensor> actualDeltas = actualSft.deltas();
        assertEquals(expectedDeltas.stream().map(DeltaTensor::module).toList(),
                actualDeltas.stream().map(DeltaTensor::module).toList(), where + ": modules");
        for (int i = 0; i < expectedDeltas.size(); i++) {
            DeltaTensor e = expectedDeltas.get(i);
            DeltaTensor a = actualDeltas.get(i);
            assertArrayEquals(e.indices(), a.indices(), where + ": delta indices of " + e.module());
            assertBitwiseEqual(where + ": delta values of " + e.module(), e.values(), a.values());
        }
        String deltaFile = CheckpointStore.DELTA_FILE;
        assertArrayEquals(Files.readAllBytes(expected.resolve(deltaFile)), Files.readAllBytes(actual.resolve(deltaFile)),
                where + ": " + deltaFile + " bytes");

        TrainingStateFile expectedState = TrainingStateFile.load(expected.resolve(CheckpointStore.STATE_FILE));
        TrainingStateFile actualState = TrainingStateFile.load(actual.resolve(CheckpointStore.STATE_FILE));
        assertEquals(withoutRunId(expectedState.metadata(), expected), withoutRunId(actualState.metadata(), actual),
                where + ": training-state metadata");
        assertEquals(expectedState.floats().keySet(), actualState.floats().keySet(), where + ": float state tensors");
        assertEquals(expectedState.ints().keySet(), actualState.ints().keySet(), where + ": int state tensors");
        assertEquals(expectedState.longs().keySet(), actualState.longs().keySet(), where + ": long state tensors");
        expectedState.floats().forEach((name, values) ->
                assertBitwiseEqual(where + ": state tensor " + name, values, actualState.floats(name)));
        expectedState.ints().forEach((name, values) ->
                assertArrayEquals(values, actualState.ints(name), where + ": state tensor " + name));
        expectedState.longs().forEach((name, values) ->
                assertArrayEquals(values, actualState.longs(name), where + ": state tensor " + name));
    }

    private static Map<String, String> withoutRunId(Map<String, String> metadata, Path checkpoint) {
        Map<String, String> m = new LinkedHashMap<>(metadata);
        assertNotNull(m.remove(RUN_ID), checkpoint + ": training-state metadata has no " + RUN_ID);
        return m;
    }

    /** Same length and the same bits at every position; the failure counts the differences and gives the largest. */
    static void assertBitwiseEqual(String what, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what + ": length");
        int differing = 0;
        int first = -1;
        double largest = 0;
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                differing++;
                first = first < 0 ? i : first;
                largest = Math.max(largest, Math.abs((double) expected[i] - actual[i]));
            }
        }
        if (differing > 0) {
            fail(String.format("%s: %d of %d values differ (largest difference %.3e; first at index %d: expected %s,"
                    + " was %s)", what, differing, expected.length, largest, first, expected[first], actual[first]));
        }
    }
}
