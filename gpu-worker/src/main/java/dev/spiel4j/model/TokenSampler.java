package dev.spiel4j.model;

import java.util.Arrays;
import java.util.Random;

/**
 * Picks the next token from a row of logits on the host: argmax when greedy, otherwise temperature-scaled
 * softmax restricted to the top-p nucleus, drawn from a seeded generator (deterministic for a seed).
 */
final class TokenSampler {
    private final GenerationConfig config;
    private final Random random;

    TokenSampler(GenerationConfig config) {
        this.config = config;
        this.random = new Random(config.seed());
    }

    int next(float[] logits) {
        if (config.isGreedy()) {
            return argMax(logits);
        }
        int n = logits.length;
        float max = logits[argMax(logits)];
        double[] probs = new double[n];
        double total = 0;
        for (int i = 0; i < n; i++) {
            probs[i] = Math.exp((logits[i] - max) / config.temperature());
            total += probs[i];
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Double.compare(probs[b], probs[a]));
        // the nucleus: most likely tokens until their mass reaches topP (always at least one token)
        int kept = 0;
        double mass = 0;
        while (kept < n && (kept == 0 || mass < config.topP() * total)) {
            mass += probs[order[kept++]];
        }
        double r = random.nextDouble() * mass;
        for (int i = 0; i < kept; i++) {
            r -= probs[order[i]];
            if (r < 0) {
                return order[i];
            }
        }
        return order[kept - 1];
    }

    /** The first index of the largest value. */
    static int argMax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }
}
