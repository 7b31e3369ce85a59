package dev.spiel4j.peft.sft;

import dev.spiel4j.peft.TargetMatrix;

/**
 * The paper's Appendix E at one slot, {@code sum_t dY[t, r] X[t, c]}, in float64 on the host: the reference the
 * slot-gradient forms are held to.
 *
 * @param exact     the sum
 * @param magnitude the sum of the products' magnitudes, which bounds a float32 sum's rounding
 */
record AppendixESum(double exact, double magnitude) {

    /** The sum at flat {@code index} from row-major {@code dy} {@code [tokens, rows]} and {@code x} {@code [tokens, cols]}. */
    static AppendixESum at(float[] dy, float[] x, int tokens, TargetMatrix matrix, long index) {
        int row = (int) (index / matrix.cols());
        int col = (int) (index % matrix.cols());
        double exact = 0;
        double magnitude = 0;
        for (int t = 0; t < tokens; t++) {
            double p = (double) dy[t * matrix.rows() + row] * x[t * matrix.cols() + col];
            exact += p;
            magnitude += Math.abs(p);
        }
        return new AppendixESum(exact, magnitude);
    }

    /** {@code factor x tokens} float32 ulps of the magnitude: each rounding is at most 2^-24 of the running magnitude. */
    double float32Bound(int tokens, int factor) {
        return (double) factor * tokens * Math.ulp((float) magnitude);
    }
}
