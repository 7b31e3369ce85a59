package dev.spiel4j.cli;

import dev.spiel4j.checkpoint.FineTuning;
import dev.spiel4j.checkpoint.PeftAdapter;
import dev.spiel4j.checkpoint.SftExport;
import dev.spiel4j.checkpoint.SftImport;
import dev.spiel4j.checkpoint.SparseFineTuning;
import dev.spiel4j.model.LlamaModel;
import dev.spiel4j.model.LoadedModel;
import dev.spiel4j.peft.registry.MethodRegistry;
import dev.spiel4j.service.CheckpointStore;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Sparse fine-tunings named on the command line: where a path's fine-tuning file is (a file, or a training
 * checkpoint directory), and loading it with errors that name the path.
 */
final class SftFiles {
    /** The help line of every option that takes a fine-tuning, after the line that says what it is for. */
    static final String PATH_HELP = "PATH: a sparse fine-tuning file, a checkpoint directory holding "
            + CheckpointStore.DELTA_FILE + " (runs/<id>/checkpoints/step-NNNNNN; a run directory means its newest"
            + " checkpoint), or an SFT adapter in the released implementation's layout (a directory with "
            + SftExport.ADAPTER_CONFIG + ", or its " + SftExport.ADAPTER_WEIGHTS + ").";

    private SftFiles() {
    }

    /**
     * The fine-tuning file that {@code path} names: a regular file is itself; a directory must hold one
     * ({@link #checkpointIn}) or be an adapter (its weights file).
     *
     * @param note told which checkpoint a run directory stands for
     * @throws IllegalArgumentException naming {@code path} and what was expected, for any other directory
     */
    static Path resolve(Path path, Consumer<String> note) {
        if (!Files.isDirectory(path)) {
            return path;
        }
        Path adapter = SftImport.weightsOf(path);
        if (adapter != null) {
            return adapter;
        }
        Path delta = checkpointIn(path, note).orElseThrow(() -> new IllegalArgumentException(notACheckpoint(path)));
        // a LoRA or (IA)3 run's checkpoint holds its adapter beside its empty delta file
        Path runAdapter = SftImport.weightsOf(delta.getParent());
        return runAdapter != null ? runAdapter : delta;
    }

    /**
     * The fine-tuning file of a directory that a training run wrote: a checkpoint directory's
     * {@value CheckpointStore#DELTA_FILE}, or, for a run directory or its checkpoints folder, that of the newest
     * checkpoint (told to {@code note}: the user named none). Empty for any other directory.
     *
     * @throws IllegalArgumentException for a run directory that holds no checkpoint yet
     */
    static Optional<Path> checkpointIn(Path dir, Consumer<String> note) {
        Path delta = dir.resolve(CheckpointStore.DELTA_FILE);
        if (Files.isRegularFile(delta)) {
            return Optional.of(delta);
        }
        Path runCheckpoints = new CheckpointStore(dir, 0).dir();
        boolean runDir = Files.isDirectory(runCheckpoints);
        List<Path> checkpoints = CheckpointStore.checkpointsIn(runDir ? runCheckpoints : dir);
        if (checkpoints.isEmpty()) {
            if (runDir) {
                throw new IllegalArgumentException(dir + " is a run directory without checkpoints yet ("
                        + runCheckpoints + " holds no step-NNNNNN directory)");
            }
            return Optional.empty();
        }
        Path newest = checkpoints.get(checkpoints.size() - 1);
        Path newestDelta = newest.resolve(CheckpointStore.DELTA_FILE);
        if (!Files.isRegularFile(newestDelta)) {
            throw new IllegalArgumentException(newest + ", the newest checkpoint in " + dir + ", has no "
                    + CheckpointStore.DELTA_FILE);
        }
        note.accept(dir + " holds " + checkpoints.size() + " checkpoint(s): using the newest, " + newest);
        return Optional.of(newestDelta);
    }

    /** Why a directory is not a fine-tuning, and what would be. */
    private static String notACheckpoint(Path dir) {
        String expected = "expected a sparse fine-tuning file, a checkpoint directory containing "
                + CheckpointStore.DELTA_FILE + " (runs/<id>/checkpoints/step-NNNNNN) or an SFT adapter directory"
                + " containing " + SftExport.ADAPTER_CONFIG;
        return dir + " is " + (isEmpty(dir) ? "an empty directory" : "a directory without "
                + CheckpointStore.DELTA_FILE + " or " + SftExport.ADAPTER_CONFIG) + ": " + expected;
    }

    private static boolean isEmpty(Path dir) {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
    }

    /**
     * Loads {@code file} and refuses one without deltas: applying it would silently change nothing.
     *
     * @throws CliFailure naming the file and, for a checkpoint of a method that is not sparse, where its weights are
     */
    static SparseFineTuning load(Path file) {
        if (PeftAdapter.isAdapter(file)) {
            throw new CliFailure("--sft " + file + " is a LoRA or (IA)3 adapter: generate, score, merge and export"
                    + " apply it; compose adds sparse fine-tunings only", null);
        }
        if (SftImport.isPeftAdapter(file)) {
            throw new CliFailure("--sft " + file + " is an SFT adapter in the released implementation's layout: its"
                    + " indices are read against a base model: give the base with --model (compose takes one too)", null);
        }
        SparseFineTuning sft = SparseFineTuning.load(file);
        if (sft.numDeltas() == 0) {
            throw new CliFailure("--sft " + withoutDeltas(file, sft), null);
        }
        return sft;
    }

    /**
     * What a fine-tuning without deltas is: LoRA, (IA)3 and full fine-tuning runs checkpoint an empty
     * {@value CheckpointStore#DELTA_FILE} and keep their trained weights in {@value CheckpointStore#STATE_FILE} only.
     */
    static String withoutDeltas(Path file, SparseFineTuning sft) {
        if (denseMethod(sft.method())) {
            boolean checkpoint = file.getFileName().toString().equals(CheckpointStore.DELTA_FILE)
                    && Files.isRegularFile(file.resolveSibling(CheckpointStore.STATE_FILE));
            String what = checkpoint
                    ? (file.getParent() == null ? Path.of(".") : file.getParent()) + " is a checkpoint of a "
                    + sft.method() + " run"
                    : file + " was written by a " + sft.method() + " run";
            return what + ": its fine-tuning is not sparse; " + file.getFileName() + " holds no deltas and the"
                    + " trained " + sft.method() + " weights are only in the checkpoint's " + CheckpointStore.STATE_FILE
                    + ", which --sft cannot apply (only " + String.join(" and ", sparseMethods()) + " runs write deltas)";
        }
        return file + " holds no deltas (method " + sft.method() + "): there is nothing to apply";
    }

    /** Whether {@code method} names a registered training method that is not sparse (LoRA, (IA)3, full). */
    private static boolean denseMethod(String method) {
        return MethodRegistry.contains(method) && !MethodRegistry.get(method).writesDeltas();
    }

    private static List<String> sparseMethods() {
        return MethodRegistry.names().stream().filter(m -> MethodRegistry.get(m).writesDeltas()).toList();
    }

    /**
     * {@link #load} for {@code base}: refuses a file trained on another base; reads an adapter in the released
     * implementation's layout (the paper's fork) against it.
     */
    static SparseFineTuning loadFor(Path file, LoadedModel base) {
        try {
            return SftImport.isPeftAdapter(file) ? SftImport.readPeftAdapter(file, base) : checked(load(file), base);
        } catch (IllegalStateException e) {
            throw new CliFailure("--sft " + file + ": " + e.getMessage(), e);
        }
    }

    private static SparseFineTuning checked(SparseFineTuning sft, LoadedModel base) {
        sft.requireBase(base.fingerprint());
        return sft;
    }

    /**
     * Each file as a fine-tuning to add into {@code base}'s weights: what {@link #loadFor} reads, and LoRA and (IA)3
     * adapters in PEFT's layout (what a LoRA or (IA)3 run's checkpoint holds). All checked before any model is
     * uploaded.
     */
    static List<FineTuning> loadAnyFor(List<Path> files, LoadedModel base) {
        List<FineTuning> loaded = new ArrayList<>();
        for (Path f : files) {
            try {
                loaded.add(PeftAdapter.isAdapter(f) ? PeftAdapter.read(f, base) : loadFor(f, base));
            } catch (IllegalStateException e) {
                throw new CliFailure("--sft " + f + ": " + e.getMessage(), e);
            }
        }
        return loaded;
    }

    /** Adds every fine-tuning into the model's weights in place, in order; several add up. */
    static void mergeInto(LlamaModel model, List<FineTuning> tunings) {
        for (FineTuning t : tunings) {
            t.mergeInto(model.weights());
        }
    }
}
