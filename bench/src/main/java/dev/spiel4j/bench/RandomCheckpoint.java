package dev.spiel4j.bench;

import dev.spiel4j.checkpoint.SftExport;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.io.ModelFingerprint;
import dev.spiel4j.loader.HfCheckpoint;
import dev.spiel4j.model.LlamaConfig;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.tokenizer.SentencePieceBpe;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Writes one of the bench's random shapes as a Hugging Face checkpoint that {@code ./spiel4j train --model DIR}
 * loads, so that what only the whole service can measure (data-parallel throughput over worker JVMs,
 * {@code tools/scale-out/measure.sh}) runs at the bench's model sizes. Weights are seeded normal(0, 0.02), norms 1;
 * the tokenizer is a SentencePiece model whose vocabulary the shape's matches (32k: the shared assets' OpenLLaMA one).
 *
 * <pre>java -cp ... dev.spiel4j.bench.RandomCheckpoint llama-100M OUT_DIR TOKENIZER.model</pre>
 */
public final class RandomCheckpoint {
    private static final float INIT_STD = 0.02f;

    private RandomCheckpoint() {
    }

    public static void main(String[] args) {
        if (args.length != 3) {
            throw new IllegalArgumentException("usage: RandomCheckpoint SHAPE OUT_DIR TOKENIZER.model (SHAPE: "
                    + BenchSuites.RANDOM_SHAPES.keySet() + ")");
        }
        BenchSpec.RandomShape shape = BenchSuites.RANDOM_SHAPES.get(args[0]);
        if (shape == null) {
            throw new IllegalArgumentException("shape " + args[0] + ": expected one of "
                    + BenchSuites.RANDOM_SHAPES.keySet());
        }
        write(shape, Path.of(args[1]), Path.of(args[2]));
    }

    /** Writes {@code shape} with its seed's weights and the tokenizer {@code tokenizerModel} into {@code dir}. */
    static void write(BenchSpec.RandomShape shape, Path dir, Path tokenizerModel) {
        SentencePieceBpe tokenizer = SentencePieceBpe.fromModelFile(tokenizerModel);
        LlamaConfig config = shape.config();
        if (tokenizer.vocabSize() != config.vocabSize()) {
            throw new IllegalArgumentException(tokenizerModel + " has " + tokenizer.vocabSize() + " pieces but the"
                    + " shape's vocabulary is " + config.vocabSize());
        }
        Random random = new Random(shape.seed());
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : HfCheckpoint.expectedShapes(config).entrySet()) {
            long[] dims = e.getValue();
            int n = Math.toIntExact(dims.length == 1 ? dims[0] : dims[0] * dims[1]);
            ByteBuffer data = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
            FloatBuffer values = data.asFloatBuffer();
            for (int i = 0; i < n; i++) {
                values.put(dims.length == 1 ? 1f : (float) random.nextGaussian() * INIT_STD);
            }
            tensors.put(e.getKey(), new HostTensor(e.getKey(), dims, HostDType.F32, data));
        }
        String fingerprint = ModelFingerprint.of(tensors);
        // the base itself, through the exporter that writes merged models: a fine-tuning without deltas
        SftExport.writeMergedModel(new SparseFineTuning(fingerprint, "none", Map.of(), List.of()),
                new LoadedModel(tokenizerModel, config, tensors, tokenizer, fingerprint), dir);
    }
}
