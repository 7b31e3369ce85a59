package dev.spiel4j.peft;

import java.util.List;

/**
 * How many parameters a sparse fine-tuning trains in total, and how that total is split: every targeted matrix gets
 * {@code floor(total * size / sum of sizes)} slots, so all have the same density.
 */
public sealed interface Budget {

    /** Total slots given the targeted matrices and the number of parameters of the whole model. */
    long total(List<TargetMatrix> targets, long modelParameters);

    /** A fraction of ALL the model's parameters (embeddings, norms and head included). */
    record Density(double density) implements Budget {
        public Density {
            if (!(density > 0 && density <= 1)) {
                throw new IllegalArgumentException("density must be in (0, 1], got " + density);
            }
        }

        @Override
        public long total(List<TargetMatrix> targets, long modelParameters) {
            return (long) Math.floor(density * modelParameters);
        }
    }

    /** An absolute number of trainable deltas. */
    record Count(long count) implements Budget {
        public Count {
            if (count < 1) {
                throw new IllegalArgumentException("number of deltas must be positive, got " + count);
            }
        }

        @Override
        public long total(List<TargetMatrix> targets, long modelParameters) {
            return count;
        }
    }

    /** As many deltas as LoRA of rank r on the same targets: {@code r * sum(in + out)}. */
    record MatchLoraRank(int rank) implements Budget {
        public MatchLoraRank {
            if (rank < 1) {
                throw new IllegalArgumentException("LoRA rank to match must be positive, got " + rank);
            }
        }

        @Override
        public long total(List<TargetMatrix> targets, long modelParameters) {
            long sum = 0;
            for (TargetMatrix t : targets) {
                sum += (long) t.rows() + t.cols();
            }
            return rank * sum;
        }
    }

    /** Slots per target (floor of the proportional share); refuses a total larger than the targets hold. */
    static int[] split(long total, List<TargetMatrix> targets) {
        long sizes = 0;
        for (TargetMatrix t : targets) {
            sizes += t.size();
        }
        if (total > sizes) {
            throw new IllegalArgumentException("budget of " + total + " deltas exceeds the " + sizes
                    + " parameters of the " + targets.size() + " targeted matrices");
        }
        int[] k = new int[targets.size()];
        for (int i = 0; i < k.length; i++) {
            // Exact integer floor of total * size / sizes (doubles would round for billions of parameters).
            k[i] = java.math.BigInteger.valueOf(total).multiply(java.math.BigInteger.valueOf(targets.get(i).size()))
                    .divide(java.math.BigInteger.valueOf(sizes)).intValueExact();
        }
        return k;
    }
}
