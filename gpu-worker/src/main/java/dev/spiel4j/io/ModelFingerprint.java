package dev.spiel4j.io;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/**
 * Identifies base weights independently of the file format: SHA-256 over every tensor's canonical name, shape and
 * float32 values in name order. A GGUF file and its Hugging Face conversion differ (q/k rows are permuted), so they
 * get different fingerprints, which is right: a delta's indices are only meaningful in one layout.
 */
public final class ModelFingerprint {
    private ModelFingerprint() {
    }

    public static String of(Map<String, HostTensor> tensors) {
        MessageDigest sha = sha256();
        for (var e : new TreeMap<>(tensors).entrySet()) {
            HostTensor t = e.getValue();
            sha.update(e.getKey().getBytes(StandardCharsets.UTF_8));
            for (long d : t.shape()) {
                sha.update(ByteBuffer.allocate(8).putLong(d).array());
            }
            float[] values = t.toFloats();
            ByteBuffer buf = ByteBuffer.allocate(4 * values.length);
            buf.asFloatBuffer().put(values);
            sha.update(buf.array());
        }
        return "sha256:" + HexFormat.of().formatHex(sha.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
