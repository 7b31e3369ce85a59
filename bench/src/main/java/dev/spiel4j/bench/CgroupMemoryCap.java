package dev.spiel4j.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/**
 * A throw-away cgroup v1 memory cgroup with a hard limit (memory.limit_in_bytes, and memory.memsw.limit_in_bytes
 * when swap accounting exists, so the cap cannot be dodged by swapping). Created as a child of this process's
 * own memory cgroup (from /proc/self/cgroup), or of the hierarchy root when that is not writable. A child
 * process joins it through {@link #wrap(List)}: {@code sh -c 'echo $$ > cgroup.procs && exec cmd...'}, so the
 * command itself, with its pid, runs inside the limit from its first instruction. The kernel OOM-kills a
 * process that exceeds the limit (SIGKILL, exit status 137) and counts it in memory.oom_control.
 */
final class CgroupMemoryCap implements AutoCloseable {
    private static final Path MEMORY_ROOT = Path.of("/sys/fs/cgroup/memory");

    private final Path dir;

    private CgroupMemoryCap(Path dir) {
        this.dir = dir;
    }

    /** A new cgroup limited to {@code limitBytes}, or empty when cgroup v1 memory is absent or not writable. */
    static Optional<CgroupMemoryCap> create(long limitBytes) {
        if (!Files.isDirectory(MEMORY_ROOT)) {
            return Optional.empty();
        }
        String name = "spiel4j-bench-" + UUID.randomUUID();
        for (Path parent : candidateParents()) {
            Path dir = parent.resolve(name);
            try {
                Files.createDirectory(dir);
            } catch (IOException | SecurityException e) {
                continue;
            }
            CgroupMemoryCap cap = new CgroupMemoryCap(dir);
            try {
                Files.writeString(dir.resolve("memory.limit_in_bytes"), Long.toString(limitBytes));
                Path memsw = dir.resolve("memory.memsw.limit_in_bytes");
                if (Files.exists(memsw)) {
                    Files.writeString(memsw, Long.toString(limitBytes));
                }
                return Optional.of(cap);
            } catch (IOException e) {
                cap.close();
            }
        }
        return Optional.empty();
    }

    private static List<Path> candidateParents() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/cgroup"))) {
                String[] parts = line.split(":", 3);
                if (parts.length == 3 && List.of(parts[1].split(",")).contains("memory")) {
                    Path own = MEMORY_ROOT.resolve(parts[2].replaceFirst("^/", ""));
                    return own.equals(MEMORY_ROOT) ? List.of(MEMORY_ROOT) : List.of(own, MEMORY_ROOT);
                }
            }
        } catch (IOException e) {
            // no /proc/self/cgroup: fall through to the root
        }
        return List.of(MEMORY_ROOT);
    }

    /** The command, prefixed so that it runs inside this cgroup. */
    List<String> wrap(List<String> command) {
        List<String> wrapped = new ArrayList<>(List.of("sh", "-c", "echo $$ > \"$0\" && exec \"$@\"",
                dir.resolve("cgroup.procs").toString()));
        wrapped.addAll(command);
        return wrapped;
    }

    /** Whether the kernel OOM-killed a process of this cgroup. */
    boolean oomKilled() {
        try {
            for (String line : Files.readAllLines(dir.resolve("memory.oom_control"))) {
                if (line.startsWith("oom_kill ")) {
                    return Long.parseLong(line.substring(9).trim()) > 0;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // old kernels have no oom_kill counter: the caller also looks at the exit status
        }
        return false;
    }

    /** Removes the cgroup; it must be empty (the child has exited). Charges move to the parent. */
    @Override
    public void close() {
        for (int attempt = 0; attempt < 50; attempt++) {
            try {
                Files.deleteIfExists(dir);
                return;
            } catch (IOException e) {
                try {
                    Thread.sleep(20); // the last task can take a moment to leave after exit
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }
}
