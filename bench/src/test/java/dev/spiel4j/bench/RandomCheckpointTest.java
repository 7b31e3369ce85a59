package dev.spiel4j.bench;

import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.SharedAssets;
import dev.spiel4j.loader.HfCheckpoint;
import dev.spiel4j.model.LoadedModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A random shape written as a Hugging Face checkpoint loads back as that shape, seeded, with its tokenizer. */
class RandomCheckpointTest {
    private static final Path TOKENIZER = SharedAssets.file("model/tok512.model");

    @Test
    void writesTheShapeSeededAndLoadable(@TempDir Path dir) {
        BenchSpec.RandomShape shape = BenchSuites.STORIES260K;
        RandomCheckpoint.write(shape, dir.resolve("a"), TOKENIZER);
        RandomCheckpoint.write(shape, dir.resolve("b"), TOKENIZER);
        LoadedModel a = HfCheckpoint.load(dir.resolve("a"));

        assertEquals(shape.config().dim(), a.config().dim());
        assertEquals(shape.config().layers(), a.config().layers());
        assertEquals(shape.config().kvHeads(), a.config().kvHeads());
        assertEquals(shape.config().ffnDim(), a.config().ffnDim());
        assertEquals(shape.config().vocabSize(), a.tokenizer().vocabSize());
        assertEquals(shape.parameters(), a.tensors().values().stream().mapToLong(HostTensor::numel).sum());
        assertEquals(a.fingerprint(), HfCheckpoint.load(dir.resolve("b")).fingerprint(), "the same seed");

        float[] norm = values(a.tensors().get("model.norm.weight"));
        for (float v : norm) {
            assertEquals(1f, v);
        }
        float[] w = values(a.tensors().get("model.layers.0.mlp.down_proj.weight"));
        double sumSq = 0;
        for (float v : w) {
            sumSq += v * v;
        }
        double std = Math.sqrt(sumSq / w.length);
        assertTrue(Math.abs(std - 0.02) < 0.002, "initialised with std 0.02: " + std);

        RandomCheckpoint.write(new BenchSpec.RandomShape(shape.dim(), shape.layers(), shape.heads(), shape.kvHeads(),
                shape.ffnDim(), shape.vocabSize(), shape.contextLength(), shape.normEps(), shape.ropeTheta(),
                shape.tiedEmbeddings(), shape.seed() + 1), dir.resolve("c"), TOKENIZER);
        assertNotEquals(a.fingerprint(), HfCheckpoint.load(dir.resolve("c")).fingerprint(), "another seed");
    }

    @Test
    void refusesATokenizerOfAnotherVocabulary(@TempDir Path dir) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RandomCheckpoint.write(
                BenchSuites.llama100M(1), dir, TOKENIZER));
        assertTrue(e.getMessage().contains("512 pieces but the shape's vocabulary is 32000"), e.getMessage());
    }

    private static float[] values(HostTensor t) {
        FloatBuffer b = t.data().duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        float[] out = new float[b.remaining()];
        b.get(out);
        return out;
    }
}
