package dev.spiel4j.kafka;

import java.time.Instant;

/**
 * A snapshot of a {@link ResilientProducer}.
 *
 * @param available        false while Kafka is unreachable (since {@code outageSince})
 * @param outageSince      start of the current outage, null when available
 * @param bufferedRecords  records accepted but not yet acknowledged
 * @param bufferedBytes    their size
 * @param deliveredRecords records acknowledged so far
 * @param outages          outages seen so far
 * @param lastError        the last delivery error, null if none
 */
public record PublisherStatus(boolean available, Instant outageSince, int bufferedRecords, long bufferedBytes,
                              long deliveredRecords, long outages, String lastError) {
}
