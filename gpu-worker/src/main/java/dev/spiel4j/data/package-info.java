/**
 * Training data as pure functions, shared by the in-memory users (benchmarks, {@code score}) and the streams module:
 * {@link dev.spiel4j.data.ExampleFileReader} (restartable, streaming readers of .txt/.json/.jsonl) ->
 * {@link dev.spiel4j.data.ExampleParser} (formats, templates, validation; bad records become
 * {@link dev.spiel4j.data.Rejected}) -> {@link dev.spiel4j.data.ExampleEncoder} (BOS + prompt + response + EOS,
 * loss mask on response and EOS, overflow policy) -> {@link dev.spiel4j.data.Batches} (shift by one, pad) ->
 * {@link dev.spiel4j.data.Batch}. {@link dev.spiel4j.data.ShuffledSampler} gives seeded epochs that resume from
 * an (epoch, index) position; {@link dev.spiel4j.data.TokenizedData} loads a whole file into memory.
 */
package dev.spiel4j.data;
