package dev.spiel4j.model;

import dev.spiel4j.io.SharedAssets;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The golden values of stories260K (golden/stories260K_reference.txt), read from the file rather than copied. */
final class Golden {
    /** encode("Once upon a time, there was a little girl named Lily.") */
    static final int[] SENTENCE = ids("encode\\(.*\\) = \\[([0-9, ]+)]");
    /** 40 greedy ids after BOS. */
    static final int[] GREEDY = ids("greedy 40 from BOS ids \\[([0-9, ]+)]");

    private Golden() {
    }

    private static int[] ids(String regex) {
        String text;
        try {
            text = Files.readString(SharedAssets.file("golden/stories260K_reference.txt"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Matcher m = Pattern.compile(regex).matcher(text);
        if (!m.find()) {
            throw new IllegalStateException("golden/stories260K_reference.txt has no line matching " + regex);
        }
        return Arrays.stream(m.group(1).split(",\\s*")).mapToInt(Integer::parseInt).toArray();
    }
}
