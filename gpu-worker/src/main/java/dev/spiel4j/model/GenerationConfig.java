package dev.spiel4j.model;

/**
 * How {@link LlamaModel#generate} picks tokens.
 *
 * @param maxNewTokens tokens to generate at most (generation also stops at EOS and at the context length)
 * @param temperature  0 for greedy decoding (argmax), otherwise logits are divided by it before sampling
 * @param topP         nucleus sampling: sample only from the smallest set of most likely tokens whose probability
 *                     reaches {@code topP} (1 = the whole vocabulary); ignored when greedy
 * @param seed         seeds the sampler, so a seed and a prompt always give the same tokens
 */
public record GenerationConfig(int maxNewTokens, float temperature, float topP, long seed) {

    public GenerationConfig {
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("maxNewTokens must be >= 0, got " + maxNewTokens);
        }
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be finite and >= 0, got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
        }
    }

    public static GenerationConfig greedy(int maxNewTokens) {
        return new GenerationConfig(maxNewTokens, 0f, 1f, 0L);
    }

    public boolean isGreedy() {
        return temperature == 0f;
    }
}
