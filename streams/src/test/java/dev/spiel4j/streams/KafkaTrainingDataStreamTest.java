package dev.spiel4j.streams;

import org.junit.jupiter.api.Tag;
import dev.spiel4j.kafka.EmbeddedKafka;

import dev.spiel4j.data.ByteTokenizer;
import dev.spiel4j.data.ExampleEncoder;
import dev.spiel4j.data.ExampleParser;
import dev.spiel4j.data.Rejected;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.kafka.ConsumerSettings;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.testkit.javadsl.TestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The continual-mode source against a real (in-JVM) broker: order, dead letters, resume from stored offsets. */
@Tag("kafka")
class KafkaTrainingDataStreamTest {
    private static final String TOPIC = "examples";
    private static EmbeddedKafka kafka;
    private static ActorSystem system;

    @BeforeAll
    static void start() throws Exception {
        kafka = EmbeddedKafka.start();
        system = ActorSystem.create("kafka-training-data-test");
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
            admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()),
                new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < 12; i++) {
                String value = i % 4 == 3 ? "{\"prompt\":\"p" + i + "\"}" // every fourth lacks its response
                        : "{\"prompt\":\"p" + i + "\",\"response\":\"r" + i + "\"}";
                producer.send(new ProducerRecord<>(TOPIC, 0, null, value.getBytes(StandardCharsets.UTF_8))).get();
            }
        }
    }

    @AfterAll
    static void stop() throws Exception {
        if (system != null) {
            TestKit.shutdownActorSystem(system);
        }
        if (kafka != null) {
            kafka.close();
        }
    }

    private static List<String> consume(KafkaOffsets from, int batches, ConcurrentLinkedQueue<Rejected> dead,
                                        List<BatchWithPosition<KafkaOffsets>> out) throws Exception {
        ConsumerSettings<byte[], byte[]> settings = ConsumerSettings
                .create(system, new ByteArrayDeserializer(), new ByteArrayDeserializer())
                .withBootstrapServers(kafka.bootstrapServers());
        List<BatchWithPosition<KafkaOffsets>> got = TrainingDataStream.batches(ExampleSources.kafka(settings, from),
                        ExampleParser.JSON, new ExampleEncoder(ByteTokenizer.INSTANCE, 64, ExampleEncoder.Overflow.REJECT),
                        new BatchShape(2, 0), DataPosition.at(from), Sink.foreach(dead::add))
                .take(batches)
                .runWith(Sink.seq(), system).toCompletableFuture().get(60, TimeUnit.SECONDS);
        out.addAll(got);
        return got.stream().flatMap(b -> b.batch().exampleIds().stream()).toList();
    }

    private static final List<String> BAD = List.of("examples-0@3", "examples-0@7", "examples-0@11");

    private static List<String> positions(ConcurrentLinkedQueue<Rejected> dead) {
        return dead.stream().map(Rejected::sourcePosition).toList();
    }

    @Test
    void topicRecordsBecomeBatchesAndResumeFromStoredOffsets() throws Exception {
        ConcurrentLinkedQueue<Rejected> dead = new ConcurrentLinkedQueue<>();
        List<BatchWithPosition<KafkaOffsets>> first = new ArrayList<>();
        List<String> ids = consume(KafkaOffsets.fromStart(TOPIC, 1), 2, dead, first);
        assertEquals(List.of("examples-0@0", "examples-0@1", "examples-0@2", "examples-0@4"), ids);
        // The stream reads ahead of the batches taken, so later bad records may already be dead-lettered.
        assertEquals("examples-0@3", dead.peek().sourcePosition());
        assertEquals("missing field 'response'", dead.peek().reason());
        assertTrue(BAD.containsAll(positions(dead)), positions(dead).toString());
        KafkaOffsets resume = first.get(1).resume().record();
        assertEquals(Map.of(0, 5L), resume.next());

        ConcurrentLinkedQueue<Rejected> deadAfter = new ConcurrentLinkedQueue<>();
        List<String> rest = consume(resume, 2, deadAfter, new ArrayList<>());
        assertEquals(List.of("examples-0@5", "examples-0@6", "examples-0@8", "examples-0@9"), rest);
        assertEquals("examples-0@7", deadAfter.peek().sourcePosition());
        assertTrue(BAD.containsAll(positions(deadAfter)), positions(deadAfter).toString());
    }
}
