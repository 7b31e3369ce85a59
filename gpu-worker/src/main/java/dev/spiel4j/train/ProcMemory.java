package dev.spiel4j.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * Resident-memory figures of a Linux process from {@code /proc/<pid>/status}: VmRSS (now) and VmHWM (peak since
 * start or since the last {@link #resetSelfPeak()}).
 */
public final class ProcMemory {
    private ProcMemory() {
    }

    /** A {@code kB} field of {@code /proc/<pid>/status} in bytes; empty when the process is gone or has none. */
    public static OptionalLong statusBytes(long pid, String field) {
        return parse(Path.of("/proc", Long.toString(pid), "status"), field);
    }

    /** A {@code kB} field of this process's status, in bytes; empty off Linux. */
    public static OptionalLong selfStatusBytes(String field) {
        return parse(Path.of("/proc/self/status"), field);
    }

    /**
     * Resets this process's VmHWM to its current RSS (Linux 4.0+: write 5 to {@code clear_refs}) so that a later
     * VmHWM is the peak of what came after. Returns false when the kernel refuses, and then VmHWM keeps the
     * peak since start.
     */
    public static boolean resetSelfPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
            return true;
        } catch (IOException | SecurityException e) {
            return false;
        }
    }

    /** A {@code kB} field of a {@code /proc} status-style file ({@code /proc/meminfo} too), in bytes. */
    public static OptionalLong parse(Path status, String field) {
        String text;
        try {
            text = Files.readString(status);
        } catch (IOException e) {
            return OptionalLong.empty();
        }
        String prefix = field + ":";
        for (String line : text.split("\n")) {
            if (line.startsWith(prefix)) {
                String[] parts = line.substring(prefix.length()).trim().split("\\s+");
                if (parts.length == 2 && parts[1].equals("kB")) {
                    return OptionalLong.of(Long.parseLong(parts[0]) * 1024);
                }
            }
        }
        return OptionalLong.empty();
    }
}
