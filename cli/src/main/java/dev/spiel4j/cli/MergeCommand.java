package dev.spiel4j.cli;

import dev.spiel4j.checkpoint.FineTuning;
import dev.spiel4j.checkpoint.PeftAdapter;
import dev.spiel4j.checkpoint.SftExport;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.model.LoadedModel;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code merge}: writes base + sum of weighted sparse fine-tunings as a float32 Hugging Face checkpoint
 * ({@link SftExport#writeMergedModel}), loadable by {@code --model DIR} and by {@code transformers}. Each
 * {@code --weight} applies to the {@code --sft} just before it (default 1).
 */
@Command(name = "merge", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Merge sparse fine-tunings into the base weights and write a Hugging Face checkpoint.")
final class MergeCommand extends CliCommand {

    @Mixin
    ModelOption model;

    @ArgGroup(exclusive = false, multiplicity = "1..*")
    List<WeightedSft> parts = new ArrayList<>();

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Directory to write (created).")
    Path out;

    /** One {@code --sft PATH [--weight W]}. */
    static final class WeightedSft {
        @Option(names = "--sft", required = true, paramLabel = "PATH", description = {
                "A sparse fine-tuning to merge.", SftFiles.PATH_HELP})
        Path file;

        @Option(names = "--weight", paramLabel = "W",
                description = "Scale of the preceding --sft's deltas. Default: 1.0.")
        double weight = 1.0;
    }

    @Override
    Result run() {
        model.requireExists();
        double[] weights = new double[parts.size()];
        List<Path> sftFiles = new ArrayList<>();
        for (int i = 0; i < weights.length; i++) {
            WeightedSft p = parts.get(i);
            sftFiles.add(requireSft(p.file));
            if (!Double.isFinite(p.weight)) {
                throw usage("--weight: must be finite, got " + p.weight + " for " + p.file);
            }
            weights[i] = p.weight;
        }
        LoadedModel base = model.load();
        List<FineTuning> tunings = SftFiles.loadAnyFor(sftFiles, base);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("out", out.toString());
        FineTuning merged;
        if (tunings.size() == 1 && tunings.get(0) instanceof PeftAdapter adapter) {
            if (weights[0] != 1.0) {
                throw usage("--weight: a " + adapter.kind() + " adapter merges whole (weight 1), got " + weights[0]);
            }
            merged = adapter;
            json.put("adapter", adapter.kind().name());
            progress("merge: writing the " + adapter.kind() + " adapter into " + out);
        } else {
            List<SparseFineTuning> sfts = new ArrayList<>();
            for (int i = 0; i < tunings.size(); i++) {
                if (!(tunings.get(i) instanceof SparseFineTuning sft)) {
                    throw usage("--sft " + sftFiles.get(i) + ": a LoRA or (IA)3 adapter merges alone, not with other"
                            + " fine-tunings");
                }
                sfts.add(sft);
            }
            SparseFineTuning sum = sfts.size() == 1 && weights[0] == 1.0 ? sfts.get(0)
                    : SparseFineTuning.compose(sfts, weights);
            merged = sum;
            json.put("num_deltas", sum.numDeltas());
            progress("merge: writing " + sum.numDeltas() + " deltas into " + out);
        }
        SftExport.writeMergedModel(merged, base, out);
        json.put("base_fingerprint", base.fingerprint());
        return new Result("wrote merged model to " + out, json);
    }
}
