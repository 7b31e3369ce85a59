package dev.spiel4j.optim;

/**
 * The optimizers' hyperparameters: AdamW uses all four, SM3 {@code eps} and {@code weightDecay}.
 *
 * @param weightDecay decoupled weight decay (the paper's lambda for SpIEL)
 * @param beta1       AdamW first-moment decay
 * @param beta2       AdamW second-moment decay
 * @param eps         AdamW / SM3 epsilon
 */
public record OptimizerSettings(float weightDecay, float beta1, float beta2, float eps) {
    /** No weight decay, betas 0.9 / 0.999, eps 1e-8 (PyTorch's AdamW defaults without its decay). */
    public static final OptimizerSettings DEFAULTS = new OptimizerSettings(0f, 0.9f, 0.999f, 1e-8f);

    public OptimizerSettings {
        if (!(weightDecay >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0)) {
            throw new IllegalArgumentException("optimizer needs weight decay >= 0, betas in [0, 1) and eps > 0; got"
                    + " weight decay " + weightDecay + ", betas " + beta1 + "/" + beta2 + ", eps " + eps);
        }
    }

    public OptimizerSettings withWeightDecay(float decay) {
        return new OptimizerSettings(decay, beta1, beta2, eps);
    }
}
