package dev.spiel4j.bench;

import dev.spiel4j.data.Batch;

import java.util.List;

/**
 * What {@link BenchChild} measures: the engine side of one configuration. {@link BenchChild} owns timing and
 * memory measurement; an implementation only loads, trains and evaluates. Implementations are found with
 * {@link java.util.ServiceLoader} through {@link Factory} (register the factory in
 * {@code META-INF/services/dev.spiel4j.bench.BenchWorkload$Factory}) and selected by {@link BenchSpec#workload()}.
 *
 * <p>Lifecycle, in this order: {@link Factory#loadBase} (base model only: the child records RSS here and resets
 * the peak), {@link #attachMethod()} (fine-tuning method and optimizer), {@link #evalLoss} (before training),
 * {@link #step} warm-up + measured times, {@link #evalLoss} (after), {@link #optimizerStateBytes()},
 * {@link #close()}.
 */
interface BenchWorkload extends AutoCloseable {

    /** Creates workloads; one per {@link BenchSpec#workload()} name. */
    interface Factory {
        String name();

        /** Loads (or randomly initialises) the frozen base model the spec names; nothing else yet. */
        BenchWorkload loadBase(BenchSpec spec) throws Exception;
    }

    /** Bytes of the base model's weights as loaded (the memory every method shares). */
    long baseWeightBytes();

    /** Builds the spec's fine-tuning method at its budget, and its optimizer. */
    void attachMethod() throws Exception;

    /** Trainable parameters of the attached method (delta count, LoRA A+B, all weights for full). */
    long trainableParams();

    /** One optimizer step on {@code batch} (forward, backward, update, any reselection); returns its loss. */
    double step(Batch batch) throws Exception;

    /** Token-weighted mean loss over {@code batches} without training (loss-mask tokens only). */
    double evalLoss(List<Batch> batches) throws Exception;

    /** Bytes of optimizer state (moments, ages, SM3 accumulators, candidate statistics). */
    long optimizerStateBytes();

    @Override
    void close() throws Exception;
}
