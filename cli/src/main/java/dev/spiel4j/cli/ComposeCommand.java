package dev.spiel4j.cli;

import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.model.LoadedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code compose}: the weighted sum of sparse fine-tunings of one base, as one new fine-tuning file
 * ({@link SparseFineTuning#compose}: union of indices, values at shared indices added). SFT adapters in the released
 * implementation's layout are read against {@code --model}.
 */
@Command(name = "compose", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Weighted sum of sparse fine-tunings of one base, written as one fine-tuning file.")
final class ComposeCommand extends CliCommand {

    @Option(names = "--sft", required = true, paramLabel = "PATH", description = {
            "A fine-tuning; repeat for each.", SftFiles.PATH_HELP})
    List<Path> sfts = new ArrayList<>();

    @Option(names = "--model", paramLabel = "PATH", description = {"Base model, needed to read SFT adapters in the"
            + " released implementation's layout (their indices are read against it); with it, every --sft must"
            + " be a fine-tuning of this base.", HubInputs.HELP})
    String model;

    @Option(names = "--weights", split = ",", paramLabel = "W", description = "One weight per --sft, in order."
            + " Default: 1 each.")
    List<Double> weights = new ArrayList<>();

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "The fine-tuning file to write.")
    Path out;

    @Override
    Result run() {
        List<Path> sftFiles = sfts.stream().map(this::requireSft).toList();
        if (!weights.isEmpty() && weights.size() != sfts.size()) {
            throw usage("--weights: " + weights.size() + " weight(s) for " + sfts.size() + " --sft file(s)");
        }
        double[] w = new double[sfts.size()];
        for (int i = 0; i < w.length; i++) {
            w[i] = weights.isEmpty() ? 1.0 : weights.get(i);
            if (!Double.isFinite(w[i])) {
                throw usage("--weights: must be finite, got " + w[i]);
            }
        }
        LoadedModel base = model == null ? null : ModelOption.load(model, spec.commandLine());
        List<SparseFineTuning> parts = new ArrayList<>();
        for (Path f : sftFiles) {
            parts.add(base == null ? SftFiles.load(f) : SftFiles.loadFor(f, base));
        }
        SparseFineTuning composed = SparseFineTuning.compose(parts, w);
        composed.save(out);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("out", out.toString());
        json.put("modules", composed.deltas().size());
        json.put("num_deltas", composed.numDeltas());
        json.put("base_fingerprint", composed.baseFingerprint());
        return new Result("wrote " + composed.numDeltas() + " deltas over " + composed.deltas().size()
                + " modules to " + out, json);
    }
}
