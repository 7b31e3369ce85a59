package dev.spiel4j.peft.sft;

/**
 * SpIEL-AG's growth statistics for one matrix over a selection phase: the K candidate positions (flat indices,
 * unique) picked by |gradient| at the phase's first step, and for each the sum of its gradients and of its squared
 * gradients over the {@code samples} steps seen so far.
 */
public record CandidateStats(long[] indices, float[] sumGrad, float[] sumSquaredGrad, int samples) {

    public CandidateStats {
        if (sumGrad.length != indices.length || sumSquaredGrad.length != indices.length) {
            throw new IllegalArgumentException("candidate stats differ in length: " + indices.length + " indices, "
                    + sumGrad.length + " sums, " + sumSquaredGrad.length + " squared sums");
        }
        if (samples < 1) {
            throw new IllegalArgumentException("candidate stats need at least one sample, got " + samples);
        }
        indices = indices.clone();
        sumGrad = sumGrad.clone();
        sumSquaredGrad = sumSquaredGrad.clone();
    }

    /** Statistics of a first phase step: the candidates and their gradients. */
    public static CandidateStats first(long[] indices, float[] grads) {
        float[] sq = new float[grads.length];
        for (int i = 0; i < grads.length; i++) {
            sq[i] = grads[i] * grads[i];
        }
        return new CandidateStats(indices, grads, sq, 1);
    }

    /** These statistics plus one more step's gradients at the same candidates. */
    public CandidateStats plus(float[] grads) {
        if (grads.length != indices.length) {
            throw new IllegalArgumentException(indices.length + " candidates but " + grads.length + " gradients");
        }
        float[] s = sumGrad.clone();
        float[] s2 = sumSquaredGrad.clone();
        for (int i = 0; i < grads.length; i++) {
            s[i] += grads[i];
            s2[i] += grads[i] * grads[i];
        }
        return new CandidateStats(indices, s, s2, samples + 1);
    }

    @Override
    public long[] indices() {
        return indices.clone();
    }

    @Override
    public float[] sumGrad() {
        return sumGrad.clone();
    }

    @Override
    public float[] sumSquaredGrad() {
        return sumSquaredGrad.clone();
    }
}
