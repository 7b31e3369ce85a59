package dev.spiel4j.bench;

import java.util.Arrays;

/** Order statistics and least-squares fits for benchmark figures. */
final class Stats {
    private Stats() {
    }

    /**
     * Median and spread of a sample (for step times: warm-up already excluded).
     *
     * @param p10 10th percentile, {@code p90} 90th, {@code q1}/{@code q3} the quartiles (linear interpolation)
     */
    public record Summary(int n, double median, double p10, double p90, double q1, double q3, double mean,
                          double min, double max) {
        public double iqr() {
            return q3 - q1;
        }
    }

    /** Least-squares line {@code y = slope * x + intercept} and its coefficient of determination. */
    public record LinearFit(double slope, double intercept, double rSquared, int n) {
        public double predict(double x) {
            return slope * x + intercept;
        }
    }

    public static Summary summarize(double[] sample) {
        if (sample.length == 0) {
            throw new IllegalArgumentException("cannot summarize an empty sample");
        }
        double[] s = sample.clone();
        Arrays.sort(s);
        double sum = 0;
        for (double v : s) {
            if (!Double.isFinite(v)) {
                throw new IllegalArgumentException("sample holds a non-finite value " + v);
            }
            sum += v;
        }
        return new Summary(s.length, quantileSorted(s, 0.5), quantileSorted(s, 0.1), quantileSorted(s, 0.9),
                quantileSorted(s, 0.25), quantileSorted(s, 0.75), sum / s.length, s[0], s[s.length - 1]);
    }

    public static double median(double[] sample) {
        return quantile(sample, 0.5);
    }

    /** The q-quantile (0..1) with linear interpolation between order statistics (numpy's default). */
    public static double quantile(double[] sample, double q) {
        if (sample.length == 0) {
            throw new IllegalArgumentException("cannot take a quantile of an empty sample");
        }
        double[] s = sample.clone();
        Arrays.sort(s);
        return quantileSorted(s, q);
    }

    private static double quantileSorted(double[] s, double q) {
        if (q < 0 || q > 1) {
            throw new IllegalArgumentException("quantile " + q + " is outside [0, 1]");
        }
        double pos = q * (s.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, s.length - 1);
        return s[lo] + (pos - lo) * (s[hi] - s[lo]);
    }

    /**
     * Ordinary least squares of y on x. R^2 = 1 - SSres/SStot; when y is constant (SStot = 0) the fit is exact
     * and R^2 is reported as 1 (a flat line is a perfect description of a flat series, which is what the
     * "memory stays flat across model sizes" check looks for).
     */
    public static LinearFit fit(double[] x, double[] y) {
        if (x.length != y.length) {
            throw new IllegalArgumentException("fit needs as many x as y values: " + x.length + " vs " + y.length);
        }
        if (x.length < 2) {
            throw new IllegalArgumentException("fit needs at least 2 points, got " + x.length);
        }
        int n = x.length;
        double mx = 0, my = 0;
        for (int i = 0; i < n; i++) {
            mx += x[i];
            my += y[i];
        }
        mx /= n;
        my /= n;
        double sxx = 0, sxy = 0, syy = 0;
        for (int i = 0; i < n; i++) {
            sxx += (x[i] - mx) * (x[i] - mx);
            sxy += (x[i] - mx) * (y[i] - my);
            syy += (y[i] - my) * (y[i] - my);
        }
        if (sxx == 0) {
            throw new IllegalArgumentException("fit needs at least two distinct x values");
        }
        double slope = sxy / sxx;
        double intercept = my - slope * mx;
        double ssRes = 0;
        for (int i = 0; i < n; i++) {
            double r = y[i] - (slope * x[i] + intercept);
            ssRes += r * r;
        }
        double r2 = syy == 0 ? 1.0 : 1.0 - ssRes / syy;
        return new LinearFit(slope, intercept, r2, n);
    }
}
