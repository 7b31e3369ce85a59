package dev.spiel4j.checkpoint;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a sparse fine-tuning holds, for {@code inspect}: per module its shape, number of deltas, density and
 * |value| statistics, and the same over all modules (density relative to the targeted matrices' elements).
 */
public record SparseFineTuningSummary(String baseFingerprint, String method, Map<String, String> hyperparameters,
                                      List<ModuleStats> modules, Stats total) {

    /** Count, density and |value| statistics of a set of deltas. */
    public record Stats(long count, long elements, double density, double meanAbs, double maxAbs) {
        Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("count", count);
            m.put("elements", elements);
            m.put("density", density);
            m.put("mean_abs", meanAbs);
            m.put("max_abs", maxAbs);
            return m;
        }
    }

    public record ModuleStats(String module, int rows, int cols, Stats stats) {
    }

    public SparseFineTuningSummary {
        hyperparameters = Map.copyOf(hyperparameters);
        modules = List.copyOf(modules);
    }

    static SparseFineTuningSummary of(SparseFineTuning sft) {
        List<ModuleStats> modules = new ArrayList<>();
        long count = 0;
        long elements = 0;
        double sumAbs = 0;
        double maxAbs = 0;
        for (DeltaTensor d : sft.deltas()) {
            double s = 0;
            double mx = 0;
            for (float v : d.values()) {
                s += Math.abs(v);
                mx = Math.max(mx, Math.abs(v));
            }
            long numel = (long) d.rows() * d.cols();
            modules.add(new ModuleStats(d.module(), d.rows(), d.cols(), stats(d.size(), numel, s, mx)));
            count += d.size();
            elements += numel;
            sumAbs += s;
            maxAbs = Math.max(maxAbs, mx);
        }
        return new SparseFineTuningSummary(sft.baseFingerprint(), sft.method(), sft.hyperparameters(), modules,
                stats(count, elements, sumAbs, maxAbs));
    }

    private static Stats stats(long count, long elements, double sumAbs, double maxAbs) {
        return new Stats(count, elements, elements == 0 ? 0 : (double) count / elements,
                count == 0 ? 0 : sumAbs / count, maxAbs);
    }

    /** A JSON-ready tree (maps, lists, strings and numbers). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("base_fingerprint", baseFingerprint);
        m.put("method", method);
        m.put("hyperparameters", new LinkedHashMap<>(hyperparameters));
        m.put("total", total.toMap());
        List<Map<String, Object>> mods = new ArrayList<>();
        for (ModuleStats ms : modules) {
            Map<String, Object> mm = new LinkedHashMap<>();
            mm.put("module", ms.module());
            mm.put("shape", List.of(ms.rows(), ms.cols()));
            mm.putAll(ms.stats().toMap());
            mods.add(mm);
        }
        m.put("modules", mods);
        return m;
    }

    /** A human-readable table. */
    public String text() {
        StringBuilder b = new StringBuilder();
        b.append("sparse fine-tuning: method ").append(method).append(", base ").append(baseFingerprint).append('\n');
        hyperparameters.entrySet().stream().sorted(Map.Entry.comparingByKey())
                .forEach(e -> b.append("  ").append(e.getKey()).append(" = ").append(e.getValue()).append('\n'));
        b.append(String.format(Locale.ROOT, "%-44s %-12s %10s %9s %11s %11s%n",
                "module", "shape", "deltas", "density", "mean|v|", "max|v|"));
        for (ModuleStats ms : modules) {
            b.append(row(ms.module(), ms.rows() + "x" + ms.cols(), ms.stats()));
        }
        b.append(row("total (" + modules.size() + " modules)", "", total));
        return b.toString();
    }

    private static String row(String name, String shape, Stats s) {
        return String.format(Locale.ROOT, "%-44s %-12s %10d %8.4f%% %11.4e %11.4e%n",
                name, shape, s.count(), 100 * s.density(), s.meanAbs(), s.maxAbs());
    }
}
