package dev.spiel4j.io;

/** Element types a model or checkpoint file may hold on the host, before anything reaches the engine. */
public enum HostDType {
    F32(4), F16(2), BF16(2), I32(4), I64(8);

    private final int bytes;

    HostDType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }
}
