package dev.spiel4j.kafka;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * Creates a deployment's topics when they are missing. Idempotent: existing topics are left as they are,
 * except that a checkpoints topic that is not compacted is refused (compaction is what keeps only the
 * latest checkpoint of each run).
 */
public final class TopicAdmin {

    private static final long TIMEOUT_MS = 30_000;

    private TopicAdmin() {
    }

    /**
     * Ensures every topic of {@code topics} exists.
     *
     * @param partitions             partitions of each new topic
     * @param replicationFactor      replicas of each new topic (1 for the embedded broker)
     * @param maxCheckpointRecordBytes largest record the checkpoints topic must accept (a chunk plus framing)
     */
    public static void ensureTopics(String bootstrapServers, Topics topics, int partitions, short replicationFactor,
                                    int maxCheckpointRecordBytes) {
        if (partitions < 1 || replicationFactor < 1) {
            throw new IllegalArgumentException("topic partitions and replication factor must be >= 1, got "
                    + partitions + " and " + replicationFactor);
        }
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers,
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) TIMEOUT_MS))) {
            List<NewTopic> wanted = new ArrayList<>();
            for (String name : topics.all()) {
                Map<String, String> config = new HashMap<>();
                if (name.equals(topics.checkpoints())) {
                    config.put(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT);
                    config.put(TopicConfig.MAX_MESSAGE_BYTES_CONFIG, Integer.toString(maxCheckpointRecordBytes));
                }
                wanted.add(new NewTopic(name, partitions, replicationFactor).configs(config));
            }
            createMissing(admin, wanted);
            requireCompacted(admin, topics.checkpoints());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topics on " + bootstrapServers, e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("cannot create the topics " + topics.all() + " on " + bootstrapServers
                    + ": " + e.getMessage(), e);
        }
    }

    private static void createMissing(Admin admin, Collection<NewTopic> wanted)
            throws InterruptedException, ExecutionException, TimeoutException {
        Set<String> existing = admin.listTopics().names().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        List<NewTopic> missing = wanted.stream().filter(t -> !existing.contains(t.name())).toList();
        for (var result : admin.createTopics(missing).values().entrySet()) {
            try {
                result.getValue().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e; // created concurrently by someone else is fine; anything else is not
                }
            }
        }
    }

    private static void requireCompacted(Admin admin, String topic)
            throws InterruptedException, ExecutionException, TimeoutException {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config config = describeWhenKnown(admin, resource);
        String policy = config.get(TopicConfig.CLEANUP_POLICY_CONFIG).value();
        if (!policy.contains(TopicConfig.CLEANUP_POLICY_COMPACT)) {
            throw new IllegalStateException("checkpoints topic '" + topic + "' has cleanup.policy=" + policy
                    + "; it must be compacted (cleanup.policy=compact)");
        }
    }

    /**
     * Describes a topic's configuration. A topic that was created a moment ago may not yet be in the metadata
     * of the broker that answers (creation completes on the controller first), so "unknown topic" is retried
     * until the timeout rather than taken as an answer.
     */
    private static Config describeWhenKnown(Admin admin, ConfigResource resource)
            throws InterruptedException, ExecutionException, TimeoutException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS);
        while (true) {
            try {
                return admin.describeConfigs(List.of(resource)).all()
                        .get(TIMEOUT_MS, TimeUnit.MILLISECONDS).get(resource);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException) || System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(100);
            }
        }
    }
}
