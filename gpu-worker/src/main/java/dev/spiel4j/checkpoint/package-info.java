/**
 * Sparse fine-tunings at rest and in use: the {@link dev.spiel4j.checkpoint.SparseFineTuning} value and its file
 * ({@link dev.spiel4j.checkpoint.SparseFineTuningFile}), resumable optimizer/selector state
 * ({@link dev.spiel4j.checkpoint.TrainingStateFile}), merging into live weights
 * ({@link dev.spiel4j.checkpoint.SparseMerge}), composition, inspection, and exports for Python tools
 * ({@link dev.spiel4j.checkpoint.SftExport}). Everything here is host-side except {@code SparseMerge}'s in-place
 * update of engine arrays.
 */
package dev.spiel4j.checkpoint;
