package dev.spiel4j.bench;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StatsTest {

    @Test
    void exactLineIsRecovered() {
        double[] x = {1, 2, 4, 8, 16};
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = 3.5 * x[i] - 2;
        }
        Stats.LinearFit f = Stats.fit(x, y);
        assertEquals(3.5, f.slope(), 1e-12);
        assertEquals(-2, f.intercept(), 1e-12);
        assertEquals(1.0, f.rSquared(), 1e-12);
        assertEquals(54, f.predict(16), 1e-12);
    }

    @Test
    void noisyFitMatchesHandComputedValues() {
        // x = 0..3, y = 1, 3, 2, 5: xbar 1.5, ybar 2.75, Sxy = 5.5, Sxx = 5 -> slope 1.1, intercept 1.1;
        // residuals -0.1, 0.8, -1.3, 0.6 -> SSres 2.7, SStot 8.75 -> R^2 = 1 - 2.7/8.75.
        Stats.LinearFit f = Stats.fit(new double[]{0, 1, 2, 3}, new double[]{1, 3, 2, 5});
        assertEquals(1.1, f.slope(), 1e-12);
        assertEquals(1.1, f.intercept(), 1e-12);
        assertEquals(1 - 2.7 / 8.75, f.rSquared(), 1e-12);
    }

    @Test
    void flatSeriesHasZeroSlope() {
        Stats.LinearFit f = Stats.fit(new double[]{1, 2, 3}, new double[]{7, 7, 7});
        assertEquals(0, f.slope(), 0);
        assertEquals(1, f.rSquared(), 0);
    }

    @Test
    void fitRejectsDegenerateInput() {
        assertThrows(IllegalArgumentException.class, () -> Stats.fit(new double[]{1}, new double[]{1}));
        assertThrows(IllegalArgumentException.class, () -> Stats.fit(new double[]{2, 2}, new double[]{1, 3}));
        assertThrows(IllegalArgumentException.class, () -> Stats.fit(new double[]{1, 2}, new double[]{1}));
    }

    @Test
    void medianAndQuantiles() {
        assertEquals(3, Stats.median(new double[]{5, 1, 3}), 0);
        assertEquals(2.5, Stats.median(new double[]{4, 1, 3, 2}), 0);
        double[] s = new double[11];
        for (int i = 0; i < s.length; i++) {
            s[i] = 10 - i; // 10..0, unsorted on purpose
        }
        Stats.Summary sum = Stats.summarize(s);
        assertEquals(5, sum.median(), 1e-12);
        assertEquals(1, sum.p10(), 1e-12);
        assertEquals(9, sum.p90(), 1e-12);
        assertEquals(5, sum.iqr(), 1e-12);
        assertEquals(0, sum.min(), 0);
        assertEquals(10, sum.max(), 0);
        assertEquals(5, sum.mean(), 1e-12);
        // interpolation between order statistics: 0.1-quantile of {1, 2} is 1.1
        assertEquals(1.1, Stats.quantile(new double[]{2, 1}, 0.1), 1e-12);
        assertTrue(Stats.summarize(new double[]{4}).median() == 4);
    }

    @Test
    void summaryRejectsEmptyAndNonFinite() {
        assertThrows(IllegalArgumentException.class, () -> Stats.summarize(new double[0]));
        assertThrows(IllegalArgumentException.class, () -> Stats.summarize(new double[]{1, Double.NaN}));
    }
}
