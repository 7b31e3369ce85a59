package dev.spiel4j.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * When {@link ServiceProducer} reports an outage, decided by hand over Kafka's {@link MockProducer}: a record
 * waiting longer than {@code outageAfter} starts one, an acknowledgement ends it, and records that queued during
 * the outage and drain afterwards, one acknowledgement after another, do not start a second.
 */
class OutageDetectionTest {
    private static final Duration OUTAGE_AFTER = Duration.ofMillis(1000);

    @Test
    void recordsDrainingAfterAnOutageAreProgressNotANewOutage() throws Exception {
        MockProducer<byte[], byte[]> client = new MockProducer<>(false, null,
                new ByteArraySerializer(), new ByteArraySerializer());
        ProducerSettings settings = ProducerSettings.defaults("mock:9092", "outage-detection")
                .withOutageAfter(OUTAGE_AFTER);
        try (ServiceProducer producer = new ServiceProducer(settings, client)) {
            for (int i = 0; i < 3; i++) {
                producer.send("metrics", new byte[] {(byte) i}, new byte[] {(byte) i});
            }
            awaitAvailable(producer, false);
            assertEquals(1, producer.status().outages());
            assertEquals(3, producer.status().waitingRecords());

            // Kafka is back: the records drain one at a time, each well within outageAfter of the one before,
            // though all of them were sent long before.
            for (int left = 2; left >= 0; left--) {
                assertTrue(client.completeNext());
                assertTrue(producer.status().available(), "the acknowledgement ends the outage");
                Thread.sleep(OUTAGE_AFTER.toMillis() / 4);
                PublisherStatus status = producer.status();
                assertTrue(status.available(), "no new outage while records drain: " + status);
                assertEquals(left, status.waitingRecords());
            }
            assertEquals(1, producer.status().outages());

            // A record that then waits too long is a second outage.
            producer.send("metrics", new byte[] {9}, new byte[] {9});
            awaitAvailable(producer, false);
            assertEquals(2, producer.status().outages());
            assertTrue(client.completeNext());
            assertTrue(producer.status().available());
            assertEquals(4, producer.status().deliveredRecords());
        }
    }

    private static void awaitAvailable(ServiceProducer producer, boolean available) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (producer.status().available() != available && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(available, producer.status().available(), "status: " + producer.status());
    }
}
