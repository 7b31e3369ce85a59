package dev.spiel4j.kafka;

import java.time.Instant;

/**
 * A snapshot of a {@link ServiceProducer}.
 *
 * @param available        false while Kafka has not acknowledged a record for too long (since {@code outageSince})
 * @param outageSince      start of the current outage, null when available
 * @param waitingRecords   records sent but not yet acknowledged (the Kafka client holds and retries them)
 * @param deliveredRecords records acknowledged so far
 * @param outages          outages seen so far
 * @param lastError        the last record the client gave up on, null if none
 */
record PublisherStatus(boolean available, Instant outageSince, int waitingRecords, long deliveredRecords,
                       long outages, String lastError) {
}
