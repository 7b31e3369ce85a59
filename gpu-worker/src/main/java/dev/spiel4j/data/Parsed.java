package dev.spiel4j.data;

/** What parsing one source record gives: a usable {@link Example} or a {@link Rejected} with the reason. */
public sealed interface Parsed permits Example, Rejected {
}
