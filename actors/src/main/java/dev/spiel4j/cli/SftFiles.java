package dev.spiel4j.cli;

import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.checkpoint.SparseMerge;
import dev.spiel4j.model.LlamaModel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Loading sparse fine-tuning files named on the command line, with errors that name the file. */
final class SftFiles {
    private SftFiles() {
    }

    /** Loads {@code file} and refuses it unless it was trained on the base with {@code fingerprint}. */
    static SparseFineTuning loadFor(Path file, String fingerprint) {
        SparseFineTuning sft = SparseFineTuning.load(file);
        try {
            sft.requireBase(fingerprint);
        } catch (IllegalStateException e) {
            throw new CliFailure("--sft " + file + ": " + e.getMessage(), e);
        }
        return sft;
    }

    /** {@link #loadFor(Path, String)} for each file, in order: all checked before any model is uploaded. */
    static List<SparseFineTuning> loadAllFor(List<Path> files, String fingerprint) {
        List<SparseFineTuning> loaded = new ArrayList<>();
        for (Path f : files) {
            loaded.add(loadFor(f, fingerprint));
        }
        return loaded;
    }

    /** Adds every fine-tuning into the model's weights in place; several add up. */
    static void mergeInto(LlamaModel model, List<SparseFineTuning> tunings) {
        for (SparseFineTuning sft : tunings) {
            SparseMerge.merge(sft, model.weights());
        }
    }
}
