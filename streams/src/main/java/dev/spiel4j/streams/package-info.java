/**
 * Pekko Streams around {@code dev.spiel4j.data}: {@link dev.spiel4j.streams.ExampleSources} (files from a
 * {@link dev.spiel4j.data.ReadPosition}, a Kafka topic from explicit {@link dev.spiel4j.streams.KafkaOffsets}) and
 * {@link dev.spiel4j.streams.TrainingDataStream} (parse -> tokenize -> pad -> batch with backpressure and a
 * dead-letter sink), yielding {@link dev.spiel4j.streams.BatchWithPosition}s whose position resumes the stream
 * exactly after the batch.
 */
package dev.spiel4j.streams;
