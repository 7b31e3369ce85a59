package dev.spiel4j.data;

/** What tokenizing one example gives: a {@link TokenizedExample} or a {@link Rejected} (e.g. too long). */
public sealed interface Encoded permits TokenizedExample, Rejected {
}
