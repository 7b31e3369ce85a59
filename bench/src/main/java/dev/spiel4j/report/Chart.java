package dev.spiel4j.report;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * A PNG chart for reports, drawn by XChart: line series (loss curves, scaling sweeps) or bars (histograms,
 * per-method comparisons), with a title, labelled axes and a legend, in a fixed palette so that a method keeps its
 * colour across charts. Renders headless (no display needed).
 */
public final class Chart {
    private static final int WIDTH = 900;
    private static final int HEIGHT = 520;
    /** Matplotlib's first colours: blue, red, green, orange, purple, brown, pink. */
    static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c),
            new Color(0xff7f0e), new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2)};

    /** One named series of (x, y) points. */
    public record Series(String name, double[] x, double[] y) {
        public Series {
            if (x.length != y.length) {
                throw new IllegalArgumentException("series '" + name + "': " + x.length + " x values, " + y.length + " y values");
            }
        }
    }

    private final org.knowm.xchart.internal.chartpart.Chart<?, ?> chart;

    private Chart(org.knowm.xchart.internal.chartpart.Chart<?, ?> chart) {
        this.chart = chart;
    }

    public static Chart lines(String title, String xLabel, String yLabel, List<Series> series) {
        XYChart c = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(xLabel)
                .yAxisTitle(yLabel).build();
        style(c.getStyler());
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        c.getStyler().setXAxisDecimalPattern("#,##0.###");
        for (Series s : series) {
            XYSeries line = c.addSeries(s.name(), s.x(), s.y());
            line.setMarker(SeriesMarkers.CIRCLE);
        }
        return new Chart(c);
    }

    public static Chart bars(String title, String xLabel, String yLabel, List<String> labels, double[] values) {
        if (labels.size() != values.length) {
            throw new IllegalArgumentException("bar chart '" + title + "': " + labels.size() + " labels, " + values.length + " values");
        }
        CategoryChart c = new CategoryChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(xLabel)
                .yAxisTitle(yLabel).build();
        style(c.getStyler());
        c.getStyler().setLegendVisible(false);
        c.addSeries(yLabel, labels, Arrays.stream(values).boxed().toList());
        return new Chart(c);
    }

    private static void style(Styler styler) {
        styler.setSeriesColors(PALETTE);
        styler.setChartBackgroundColor(Color.WHITE);
        styler.setPlotBackgroundColor(Color.WHITE);
        styler.setLegendBorderColor(Color.LIGHT_GRAY);
        styler.setAntiAlias(true);
    }

    /** Renders the chart and writes it as PNG. */
    public void writePng(Path file) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write chart " + file, e);
        }
    }
}
