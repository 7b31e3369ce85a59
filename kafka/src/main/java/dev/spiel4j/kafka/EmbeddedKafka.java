package dev.spiel4j.kafka;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.Feature;
import org.apache.kafka.server.common.MetadataVersion;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A single-node Kafka broker (KRaft, combined broker and controller) running inside this JVM, so that a run
 * needs nothing installed. It listens on 127.0.0.1 only, on a free port chosen at the first start and kept
 * across {@link #stop()}/{@link #restart()} so that clients reconnect to the same address.
 *
 * <p>The log directory is formatted on first use (what {@code kafka-storage format} does) and reused when it
 * is already formatted, so a broker started on the same directory keeps its topics.
 */
public final class EmbeddedKafka implements AutoCloseable {

    private static final int NODE_ID = 1;
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(30);
    /** Java has no timed file lock: a held directory is tried this often. */
    private static final long LOCK_POLL_MILLIS = 250;
    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedKafka.class);

    private final Path logDir;
    private final boolean ownsLogDir;
    private final int brokerPort;
    private final int controllerPort;
    private KafkaRaftServer server;

    private EmbeddedKafka(Path logDir, boolean ownsLogDir, int brokerPort) {
        this.logDir = logDir;
        this.ownsLogDir = ownsLogDir;
        // two ports free at once: taken one after the other, the kernel may hand out the same port twice
        int[] free = freePorts(2);
        this.brokerPort = brokerPort == 0 ? free[0] : brokerPort;
        this.controllerPort = free[0] != this.brokerPort ? free[0] : free[1];
    }

    /** Starts a broker on a fresh temporary directory, deleted again by {@link #close()}. */
    public static EmbeddedKafka start() {
        try {
            EmbeddedKafka kafka = new EmbeddedKafka(Files.createTempDirectory("spiel4j-kafka-"), true, 0);
            kafka.startServer();
            return kafka;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a temporary directory for the embedded Kafka broker", e);
        }
    }

    /**
     * Starts a broker whose data lives in {@code logDir} (created and formatted when needed, kept on close).
     *
     * @param brokerPort port for clients on 127.0.0.1, or 0 for a free one
     */
    public static EmbeddedKafka start(Path logDir, int brokerPort) {
        return start(logDir, brokerPort, Duration.ZERO);
    }

    /**
     * Starts a broker whose data lives in {@code logDir}, first waiting up to {@code lockWait} while another process
     * holds the directory (Kafka's own lock on its {@code .lock} file): for a run taken over from a process that is
     * still alive and releases the broker once it notices. Still held after that, the start fails with Kafka's error.
     */
    public static EmbeddedKafka start(Path logDir, int brokerPort, Duration lockWait) {
        if (brokerPort < 0 || brokerPort > 65535) {
            throw new IllegalArgumentException("embedded Kafka broker port must be 0..65535, got " + brokerPort);
        }
        try {
            Files.createDirectories(logDir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the embedded Kafka log directory " + logDir, e);
        }
        awaitUnlocked(logDir, lockWait);
        EmbeddedKafka kafka = new EmbeddedKafka(logDir, false, brokerPort);
        kafka.startServer();
        return kafka;
    }

    private static void awaitUnlocked(Path logDir, Duration lockWait) {
        Path lockFile = logDir.resolve(".lock");
        if (lockWait.isZero() || !Files.exists(lockFile)) {
            return;
        }
        long deadline = System.nanoTime() + lockWait.toNanos();
        boolean logged = false;
        try (FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.WRITE)) {
            while (true) {
                try (FileLock free = channel.tryLock()) {
                    if (free != null) {
                        return;
                    }
                } catch (OverlappingFileLockException heldHere) {
                    return; // a broker of this process: Kafka's start says so
                }
                if (System.nanoTime() >= deadline) {
                    return;
                }
                if (!logged) {
                    logged = true;
                    LOG.warn("another process holds the Kafka directory {}: waiting up to {} for it to let go",
                            logDir, lockWait);
                }
                Thread.sleep(LOCK_POLL_MILLIS);
            }
        } catch (NoSuchFileException released) {
            return; // its holder shut its broker down cleanly in the meantime, which deletes the file
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open the embedded Kafka lock file " + lockFile, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the Kafka directory " + logDir, e);
        }
    }

    /** The address clients connect to, e.g. {@code 127.0.0.1:40123}. */
    public String bootstrapServers() {
        return "127.0.0.1:" + brokerPort;
    }

    public Path logDir() {
        return logDir;
    }

    public synchronized boolean isRunning() {
        return server != null;
    }

    /** Shuts the broker down, keeping its data; {@link #restart()} brings it back on the same port. */
    public synchronized void stop() {
        if (server != null) {
            KafkaRaftServer running = server;
            server = null;
            running.shutdown();
            running.awaitShutdown();
        }
    }

    /** Starts the broker again after {@link #stop()}, with the same data and address. */
    public synchronized void restart() {
        if (server == null) {
            startServer();
        }
    }

    @Override
    public synchronized void close() {
        stop();
        if (ownsLogDir) {
            deleteRecursively(logDir);
        }
    }

    private synchronized void startServer() {
        format();
        KafkaConfig config = new KafkaConfig(brokerProperties(), false);
        KafkaRaftServer started = new KafkaRaftServer(config, Time.SYSTEM);
        try {
            started.startup();
            awaitReady();
        } catch (RuntimeException e) {
            started.shutdown();
            started.awaitShutdown();
            throw new IllegalStateException("embedded Kafka broker did not start on " + bootstrapServers()
                    + " with log directory " + logDir + ": " + e.getMessage(), e);
        }
        server = started;
    }

    private Properties brokerProperties() {
        String controller = "127.0.0.1:" + controllerPort;
        Properties p = new Properties();
        p.putAll(Map.ofEntries(
                Map.entry("process.roles", "broker,controller"),
                Map.entry("node.id", Integer.toString(NODE_ID)),
                Map.entry("controller.quorum.voters", NODE_ID + "@" + controller),
                Map.entry("listeners", "PLAINTEXT://" + bootstrapServers() + ",CONTROLLER://" + controller),
                Map.entry("advertised.listeners", "PLAINTEXT://" + bootstrapServers()),
                Map.entry("controller.listener.names", "CONTROLLER"),
                Map.entry("inter.broker.listener.name", "PLAINTEXT"),
                Map.entry("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
                Map.entry("log.dirs", logDir.toAbsolutePath().toString()),
                // One node: every internal topic has one replica.
                Map.entry("offsets.topic.replication.factor", "1"),
                Map.entry("offsets.topic.num.partitions", "1"),
                Map.entry("transaction.state.log.replication.factor", "1"),
                Map.entry("transaction.state.log.min.isr", "1"),
                Map.entry("share.coordinator.state.topic.replication.factor", "1"),
                Map.entry("share.coordinator.state.topic.min.isr", "1"),
                Map.entry("group.initial.rebalance.delay.ms", "0"),
                // Topics are created explicitly (TopicAdmin) with the settings they need.
                Map.entry("auto.create.topics.enable", "false"),
                Map.entry("num.partitions", "1"),
                // After a restart the controller waits for the previous broker session to expire before the
                // broker may register again: keep that wait short.
                Map.entry("broker.session.timeout.ms", "2000"),
                Map.entry("broker.heartbeat.interval.ms", "500")));
        return p;
    }

    private void format() {
        if (Files.exists(logDir.resolve("meta.properties"))) {
            return; // formatted by an earlier start: keep its cluster id and data
        }
        try {
            new Formatter()
                    .setPrintStream(new PrintStream(OutputStream.nullOutputStream()))
                    .setNodeId(NODE_ID)
                    .setClusterId(Uuid.randomUuid().toString())
                    .setDirectories(List.of(logDir.toAbsolutePath().toString()))
                    .setMetadataLogDirectory(logDir.toAbsolutePath().toString())
                    .setReleaseVersion(MetadataVersion.LATEST_PRODUCTION)
                    .setSupportedFeatures(Feature.PRODUCTION_FEATURES)
                    .setControllerListenerName("CONTROLLER")
                    .run();
        } catch (Exception e) {
            throw new IllegalStateException("cannot format the embedded Kafka log directory " + logDir
                    + ": " + e.getMessage(), e);
        }
    }

    private void awaitReady() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers());
        try (Admin admin = Admin.create(p)) {
            int nodes = admin.describeCluster(new DescribeClusterOptions()
                            .timeoutMs((int) READY_TIMEOUT.toMillis()))
                    .nodes().get(READY_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).size();
            if (nodes != 1) {
                throw new IllegalStateException("expected one broker node, the cluster reports " + nodes);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the broker", e);
        } catch (Exception e) {
            throw new IllegalStateException("broker not ready after " + READY_TIMEOUT + ": " + e.getMessage(), e);
        }
    }

    /** {@code count} distinct free ports on 127.0.0.1: their sockets are all open while the ports are read. */
    private static int[] freePorts(int count) {
        ServerSocket[] sockets = new ServerSocket[count];
        try {
            int[] ports = new int[count];
            for (int i = 0; i < count; i++) {
                sockets[i] = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                ports[i] = sockets[i].getLocalPort();
            }
            return ports;
        } catch (IOException e) {
            throw new UncheckedIOException("no free port on 127.0.0.1 for the embedded Kafka broker", e);
        } finally {
            for (ServerSocket socket : sockets) {
                if (socket != null) {
                    try {
                        socket.close();
                    } catch (IOException e) {
                        // a socket that was only bound to learn its port: nothing depends on its close
                    }
                }
            }
        }
    }

    private static void deleteRecursively(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete the embedded Kafka log directory " + dir, e);
        }
    }
}
