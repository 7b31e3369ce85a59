package dev.spiel4j.bench;

import java.util.List;

/**
 * What a benchmark suite runs: the configurations of the main tables, the scaling sweeps (each point a
 * configuration, its x a number such as the delta count or the model's parameters), and the configurations whose
 * minimum memory is bisected. A configuration named in several places runs once.
 *
 * @param suite         suite name for the report
 * @param command       the command line that runs it (printed in the report)
 * @param targetModel   the model whose rows the report's targets table reads (null: no targets table)
 * @param configs       the per-method comparison
 * @param sweeps        scaling sweeps; y is the measured memory overhead
 * @param minimumMemory configurations to bisect (their {@code steps} is the N that must complete)
 */
public record BenchPlan(String suite, String command, String targetModel, List<BenchSpec> configs,
                        List<Sweep> sweeps, List<BenchSpec> minimumMemory) {

    public BenchPlan {
        configs = List.copyOf(configs);
        sweeps = List.copyOf(sweeps);
        minimumMemory = List.copyOf(minimumMemory);
    }

    /**
     * A scaling sweep: configuration i is plotted at {@code x[i]} (labelled {@code labels[i]}). With
     * {@code baselines}, y is the overhead of configuration i minus that of {@code baselines[i]} (e.g. the same
     * shape with a method that trains almost nothing, whose overhead is the frozen model's own activations), so
     * the sweep shows what the method itself adds.
     */
    public record Sweep(String name, String xLabel, List<String> labels, List<BenchSpec> specs, double[] x,
                        List<BenchSpec> baselines) {
        public Sweep {
            if (specs.size() != x.length || labels.size() != x.length) {
                throw new IllegalArgumentException("sweep '" + name + "': " + specs.size() + " configurations, "
                        + labels.size() + " labels, " + x.length + " x values");
            }
            if (!baselines.isEmpty() && baselines.size() != specs.size()) {
                throw new IllegalArgumentException("sweep '" + name + "': " + baselines.size() + " baselines for "
                        + specs.size() + " configurations");
            }
            labels = List.copyOf(labels);
            specs = List.copyOf(specs);
            baselines = List.copyOf(baselines);
        }

        /** A sweep of the configurations' own overhead. */
        Sweep(String name, String xLabel, List<String> labels, List<BenchSpec> specs, double[] x) {
            this(name, xLabel, labels, specs, x, List.of());
        }
    }
}
