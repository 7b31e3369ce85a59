package dev.spiel4j.engine;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Keeps {@link EngineArrays} the only place that turns Java data or Java numbers into engine arrays: scans the main
 * sources of every module for {@code create(...)} on an {@code NDManager} and for NDArray ops whose argument is a
 * number (a literal, a cast, a {@code Math} call or a variable declared with a primitive number type). It reads the
 * source as text, so it catches the usual spellings, not every conceivable one; the collection-torture test
 * ({@code BitIdenticalStepsTest}) is what proves the training step safe.
 */
class EngineArraysGuardTest {
    private static final Pattern MANAGER_VARIABLE = Pattern.compile("\\bNDManager\\s+(\\w+)");
    private static final Pattern NUMBER_VARIABLE =
            Pattern.compile("\\b(?:float|double|int|long|short|byte)\\s+(\\w+)\\s*[=;,)]");
    private static final String OPS = "mul|div|add|sub|pow|mod|maximum|minimum|eq|neq|gt|gte|lt|lte"
            + "|muli|divi|addi|subi|powi|modi|rdiv|rsub";
    private static final Pattern NUMBER_ARGUMENT = Pattern.compile("\\.(?:" + OPS + ")\\(\\s*("
            + "-?[0-9][0-9.]*(?:[eE]-?[0-9]+)?[fFdDlL]?(?:\\s*/\\s*(?:Math\\.\\w+\\([^)]*\\)|[^,()]*))?"
            + "|-?\\((?:float|double|int|long)\\)[^,()]*|Math\\.\\w+\\([^)]*\\)|[A-Za-z_]\\w*)\\s*\\)");

    @Test
    void onlyEngineArraysMakesEngineArraysFromJavaDataOrNumbers() throws IOException {
        List<Path> sources = mainSources();
        assertTrue(sources.size() > 50, "found only " + sources.size() + " main sources under " + repositoryRoot());
        List<String> findings = new ArrayList<>();
        for (Path file : sources) {
            if (file.getFileName().toString().equals("EngineArrays.java")) {
                continue;
            }
            String text = Files.readString(file);
            if (!text.contains("import ai.djl.ndarray.")) {
                continue;
            }
            findings.addAll(scan(file, text));
        }
        assertEquals(List.of(), findings, "use dev.spiel4j.engine.EngineArrays (of / scalar / copyInto / fill) instead");
    }

    @Test
    void theScanFindsWhatItIsMeantToFind() {
        String bad = """
                import ai.djl.ndarray.NDArray;
                class Bad {
                    NDArray f(NDManager scope, NDArray x, float scale, long tokens) {
                        NDArray a = scope.create(new float[]{1f});
                        NDArray b = x.getManager().create(new long[]{1});
                        return x.mul(scale).div(tokens).add(1e-5f).sub((float) Math.PI).mul(1.0 / Math.sqrt(8));
                    }
                }
                """;
        assertEquals(7, scan(Path.of("Bad.java"), bad).size(), String.join("\n", scan(Path.of("Bad.java"), bad)));
        String good = """
                import ai.djl.ndarray.NDArray;
                class Good {
                    NDArray f(NDManager scope, NDArray x, NDArray y, float scale) {
                        NDArray s = EngineArrays.scalar(scope, scale);
                        return x.mul(s).add(y).clip(0, 1);
                    }
                }
                """;
        assertEquals(List.of(), scan(Path.of("Good.java"), good));
    }

    private static List<String> scan(Path file, String text) {
        Set<String> managers = names(MANAGER_VARIABLE, text);
        Set<String> numbers = names(NUMBER_VARIABLE, text);
        List<String> findings = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i];
            if (line.trim().startsWith("*") || line.trim().startsWith("//")) {
                continue;
            }
            Matcher create = Pattern.compile("(\\w+(?:\\(\\))?)\\.create\\(").matcher(line);
            while (create.find()) {
                String receiver = create.group(1);
                if (managers.contains(receiver) || receiver.equals("getManager()")) {
                    findings.add(file + ":" + (i + 1) + ": " + line.trim());
                }
            }
            Matcher op = NUMBER_ARGUMENT.matcher(line);
            while (op.find()) {
                String argument = op.group(1).trim();
                boolean identifier = argument.matches("[A-Za-z_]\\w*");
                if (!identifier || numbers.contains(argument)) {
                    findings.add(file + ":" + (i + 1) + ": " + line.trim());
                }
            }
        }
        return findings;
    }

    private static Set<String> names(Pattern declaration, String text) {
        Set<String> out = new HashSet<>();
        Matcher m = declaration.matcher(text);
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    private static List<Path> mainSources() throws IOException {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> modules = Files.list(repositoryRoot())) {
            for (Path module : modules.toList()) {
                Path main = module.resolve("src/main/java");
                if (Files.isDirectory(main)) {
                    try (Stream<Path> files = Files.walk(main)) {
                        files.filter(f -> f.toString().endsWith(".java")).forEach(out::add);
                    }
                }
            }
        }
        return out;
    }

    /** The repository root: the tests run in the gpu-worker module's directory. */
    private static Path repositoryRoot() {
        return Path.of("").toAbsolutePath().getParent();
    }
}
