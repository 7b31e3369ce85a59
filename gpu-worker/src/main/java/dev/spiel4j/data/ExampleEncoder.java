package dev.spiel4j.data;

import dev.spiel4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Tokenizes examples as {@code BOS + encode(prompt) + encode(response) + EOS} with the loss on the response
 * and the EOS only. Prompt and response are encoded separately, so the boundary between them is exact (with a
 * SentencePiece tokenizer each part gets its own dummy-prefix space, as in the usual fine-tuning recipes).
 *
 * <p>{@code maxTokens} bounds the whole sequence, BOS and EOS included (a batch row then has
 * {@code maxTokens - 1} positions). What happens to a longer example is the {@link Overflow} policy.
 */
public final class ExampleEncoder {

    /** What to do with an example longer than {@code maxTokens}. */
    public enum Overflow {
        /** Reject it (a dead letter saying how long it is). */
        REJECT,
        /**
         * Drop prompt tokens from the left (the start of the prompt, keeping BOS) until it fits; if the response
         * alone is still too long, cut the response from the right, and the EOS goes with it (the answer did not
         * end there).
         */
        TRUNCATE,
        /**
         * Plain text (empty prompt): cut the token sequence into consecutive chunks of {@code maxTokens - 1}
         * tokens, each with its own BOS, ids suffixed {@code #0}, {@code #1}...; the EOS ends the last chunk.
         * Examples with a prompt are truncated as with {@link #TRUNCATE}.
         */
        SPLIT
    }

    private final Tokenizer tokenizer;
    private final int maxTokens;
    private final Overflow overflow;

    public ExampleEncoder(Tokenizer tokenizer, int maxTokens, Overflow overflow) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.overflow = Objects.requireNonNull(overflow, "overflow");
        if (maxTokens < 2) {
            throw new IllegalArgumentException("maxTokens must be at least 2 (BOS and one target), is " + maxTokens);
        }
        this.maxTokens = maxTokens;
    }

    public int maxTokens() {
        return maxTokens;
    }

    /**
     * Encodes one example: usually one {@link TokenizedExample}, several for a split text, or one
     * {@link Rejected} (too long with {@link Overflow#REJECT}, or a response that encodes to no tokens).
     */
    public List<Encoded> encode(Example example) {
        int[] prompt = tokenizer.encode(example.prompt());
        int[] response = tokenizer.encode(example.response());
        if (response.length == 0) {
            return List.of(reject(example, "empty response: the response encodes to no tokens"));
        }
        int total = 1 + prompt.length + response.length + 1;
        if (total <= maxTokens) {
            return List.of(assemble(example.id(), prompt, response, true));
        }
        return switch (overflow) {
            case REJECT -> List.of(reject(example, "too long: " + total + " tokens (prompt " + prompt.length
                    + ", response " + response.length + ", BOS, EOS) > maxTokens " + maxTokens
                    + " and truncation is off"));
            case SPLIT -> prompt.length == 0
                    ? split(example.id(), response)
                    : List.of(truncate(example, prompt, response));
            case TRUNCATE -> List.of(truncate(example, prompt, response));
        };
    }

    private Encoded truncate(Example example, int[] prompt, int[] response) {
        int room = maxTokens - 1; // after BOS
        if (response.length + 1 <= room) {
            int keepPrompt = room - response.length - 1;
            return assemble(example.id(), Arrays.copyOfRange(prompt, prompt.length - keepPrompt, prompt.length),
                    response, true);
        }
        return assemble(example.id(), new int[0], Arrays.copyOf(response, room), false);
    }

    private List<Encoded> split(String id, int[] text) {
        int[] body = Arrays.copyOf(text, text.length + 1);
        body[text.length] = tokenizer.eosId();
        return List.copyOf(chunks(id, body, maxTokens - 1, tokenizer.bosId()));
    }

    /**
     * Cuts one token stream into consecutive chunks of {@code chunkLen} tokens (the last may be shorter), each
     * prefixed with {@code bosId} and entirely under the loss mask, ids {@code id#0}, {@code id#1}...: causal LM
     * on text chunked by token length (e.g. the golden loss procedure: a file as one stream, chunks of 511).
     */
    public static List<TokenizedExample> chunks(String id, int[] tokens, int chunkLen, int bosId) {
        if (chunkLen < 1) {
            throw new IllegalArgumentException("chunkLen must be >= 1, is " + chunkLen);
        }
        List<TokenizedExample> out = new ArrayList<>();
        for (int start = 0, k = 0; start < tokens.length; start += chunkLen, k++) {
            int end = Math.min(tokens.length, start + chunkLen);
            int[] chunk = new int[1 + end - start];
            chunk[0] = bosId;
            System.arraycopy(tokens, start, chunk, 1, end - start);
            out.add(new TokenizedExample(id + "#" + k, chunk, 1));
        }
        return out;
    }

    private TokenizedExample assemble(String id, int[] prompt, int[] response, boolean withEos) {
        int[] tokens = new int[1 + prompt.length + response.length + (withEos ? 1 : 0)];
        tokens[0] = tokenizer.bosId();
        System.arraycopy(prompt, 0, tokens, 1, prompt.length);
        System.arraycopy(response, 0, tokens, 1 + prompt.length, response.length);
        if (withEos) {
            tokens[tokens.length - 1] = tokenizer.eosId();
        }
        return new TokenizedExample(id, tokens, 1 + prompt.length);
    }

    private static Rejected reject(Example example, String reason) {
        return new Rejected(example.id(), reason, example.prompt() + example.response());
    }
}
