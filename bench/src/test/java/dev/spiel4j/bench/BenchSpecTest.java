package dev.spiel4j.bench;

import dev.spiel4j.data.Batch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchSpecTest {

    private static BenchSpec stories(boolean activationCheckpointing) {
        return new BenchSpec("engine", new BenchSpec.Model("stories260K", "/a/m.gguf", "/a/hf", null), "lora",
                new BenchSpec.Budget(8, 16, 0.05, 46240), "bf16", 2, 20, 3, 1e-3, 0.01, 42, "/b/batches.json",
                activationCheckpointing);
    }

    @Test
    void specRoundTripsWithSnakeCaseKeys(@TempDir Path dir) throws Exception {
        for (boolean checkpointing : new boolean[]{false, true}) {
            BenchSpec s = stories(checkpointing);
            Path f = dir.resolve("spec-" + checkpointing + ".json");
            s.write(f);
            String text = Files.readString(f);
            assertTrue(text.contains("\"warmup_steps\"") && text.contains("\"hf_dir\"") && text.contains("\"lora_rank\""), text);
            assertTrue(text.contains("\"activation_checkpointing\" : " + checkpointing), text);
            BenchSpec back = BenchSpec.read(f);
            assertEquals(s, back);
            assertEquals(checkpointing, back.activationCheckpointing());
        }
    }

    /** A spec file written before the key existed means no activation checkpointing (the peer reads it so too). */
    @Test
    void aSpecWithoutActivationCheckpointingMeansWithout(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("old.json");
        stories(true).write(f);
        String text = Files.readString(f);
        String withoutKey = text.replaceAll(",\\s*\"activation_checkpointing\" : true", "");
        assertFalse(withoutKey.contains("activation_checkpointing"), withoutKey);
        Files.writeString(f, withoutKey);
        assertEquals(stories(false), BenchSpec.read(f));

        for (String notABoolean : List.of("7", "\"yes\"", "\"true\"")) {
            Files.writeString(f, text.replace("\"activation_checkpointing\" : true",
                    "\"activation_checkpointing\" : " + notABoolean));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BenchSpec.read(f));
            assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        }
    }

    @Test
    void withActivationCheckpointingChangesOnlyThatSetting() {
        assertEquals(stories(true), stories(false).withActivationCheckpointing(true));
        assertEquals(stories(false), stories(true).withActivationCheckpointing(false));
    }

    @Test
    void invalidSpecsNameTheProblemAndTheFile(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("bad.json");
        Files.writeString(f, "{\"workload\":\"engine\",\"model\":{\"name\":\"m\",\"gguf\":\"x\"},\"method\":\"dora\","
                + "\"budget\":{\"lora_rank\":4},\"dtype\":\"fp32\",\"threads\":1,\"steps\":1,\"warmup_steps\":0,"
                + "\"lr\":0.1,\"weight_decay\":0,\"seed\":1,\"batches\":\"b\"}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BenchSpec.read(f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("dora"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new BenchSpec.Model("m", "x", null,
                new BenchSpec.RandomShape(8, 1, 2, 1, 8, 16, 16, 1e-5, 1e4, false, 1)));
    }

    @Test
    void shapeCountsMatchStories260K() {
        // stories260K: dim 64, 5 layers, 8 heads, 4 kv heads, ffn 172, vocab 512, tied: 260,032 parameters.
        BenchSpec.RandomShape s = new BenchSpec.RandomShape(64, 5, 8, 4, 172, 512, 512, 1e-5, 1e4, true, 1);
        assertEquals(260_032, s.parameters());
        // LoRA r=4 over q,k,v,o,gate,up,down: 4 * 5 * (128 + 96 + 96 + 128 + 236 * 3)
        assertEquals(23_120, s.loraParameters(4));
    }

    @Test
    void batchFileRoundTripsAndValidates(@TempDir Path dir) throws Exception {
        Batch b = new Batch(2, 3, new long[]{1, 5, 6, 1, 7, 0}, new long[]{5, 6, 2, 7, 2, 0},
                new float[]{0, 1, 1, 0, 1, 0}, new float[]{1, 1, 1, 1, 1, 0}, List.of("a", "b"));
        BatchFile file = new BatchFile(List.of(b), List.of(b));
        Path f = dir.resolve("batches.json");
        file.write(f);
        BatchFile back = BatchFile.read(f);
        Batch r = back.train().get(0);
        assertArrayEquals(b.inputs(), r.inputs());
        assertArrayEquals(b.targets(), r.targets());
        assertArrayEquals(b.lossMask(), r.lossMask());
        assertArrayEquals(b.attentionMask(), r.attentionMask());
        assertEquals(b.exampleIds(), r.exampleIds());
        assertEquals(1, back.eval().size());
        assertEquals(5, BatchFile.realTokens(b));

        Files.writeString(f, Files.readString(f).replaceFirst("\"inputs\":\\[1,", "\"inputs\":["));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BatchFile.read(f));
        assertTrue(e.getMessage().contains("train[0]") && e.getMessage().contains("inputs"), e.getMessage());
    }

    @Test
    void syntheticBatchesAreSeededAndShifted() {
        BatchFile a = BatchFile.synthetic(9, 2, 1, 2, 5, 50), b = BatchFile.synthetic(9, 2, 1, 2, 5, 50);
        assertArrayEquals(a.train().get(1).inputs(), b.train().get(1).inputs());
        Batch first = a.train().get(0);
        for (int i = 0; i + 1 < first.inputs().length; i++) {
            assertEquals(first.targets()[i], first.inputs()[i + 1]); // next-token targets across the stream
        }
        assertEquals(10, BatchFile.realTokens(first));
        assertEquals(1, a.eval().size());
    }
}
