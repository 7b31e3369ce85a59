package dev.spiel4j.report;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A small headless PNG chart: line series (loss curves, scaling sweeps) or bars (histograms, per-method
 * comparisons). Plain Java2D so that reports need no plotting library and render on a server without a display.
 */
public final class Chart {
    private static final int WIDTH = 900;
    private static final int HEIGHT = 520;
    private static final int LEFT = 80;
    private static final int RIGHT = 200;
    private static final int TOP = 50;
    private static final int BOTTOM = 60;
    private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c),
            new Color(0xff7f0e), new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2)};

    /** One named series of (x, y) points. */
    public record Series(String name, double[] x, double[] y) {
        public Series {
            if (x.length != y.length) {
                throw new IllegalArgumentException("series '" + name + "': " + x.length + " x values, " + y.length + " y values");
            }
        }
    }

    private final String title;
    private final String xLabel;
    private final String yLabel;
    private final List<Series> series = new ArrayList<>();
    private List<String> barLabels = List.of();
    private double[] barValues = new double[0];

    private Chart(String title, String xLabel, String yLabel) {
        this.title = title;
        this.xLabel = xLabel;
        this.yLabel = yLabel;
    }

    public static Chart lines(String title, String xLabel, String yLabel, List<Series> series) {
        Chart c = new Chart(title, xLabel, yLabel);
        c.series.addAll(series);
        return c;
    }

    public static Chart bars(String title, String xLabel, String yLabel, List<String> labels, double[] values) {
        if (labels.size() != values.length) {
            throw new IllegalArgumentException("bar chart '" + title + "': " + labels.size() + " labels, " + values.length + " values");
        }
        Chart c = new Chart(title, xLabel, yLabel);
        c.barLabels = List.copyOf(labels);
        c.barValues = values.clone();
        return c;
    }

    /** Renders the chart and writes it as PNG. */
    public void writePng(Path file) {
        BufferedImage img = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, HEIGHT);
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
            g.drawString(title, LEFT, 30);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            if (barValues.length > 0) {
                drawBars(g);
            } else {
                drawLines(g);
            }
            g.setColor(Color.BLACK);
            g.drawString(xLabel, LEFT + (WIDTH - LEFT - RIGHT) / 2 - 30, HEIGHT - 15);
            g.rotate(-Math.PI / 2);
            g.drawString(yLabel, -(TOP + (HEIGHT - TOP - BOTTOM) / 2) - 30, 20);
            g.rotate(Math.PI / 2);
        } finally {
            g.dispose();
        }
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            ImageIO.write(img, "png", file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write chart " + file, e);
        }
    }

    private void drawLines(Graphics2D g) {
        double xMin = Double.POSITIVE_INFINITY, xMax = Double.NEGATIVE_INFINITY;
        double yMin = Double.POSITIVE_INFINITY, yMax = Double.NEGATIVE_INFINITY;
        for (Series s : series) {
            for (int i = 0; i < s.x().length; i++) {
                if (Double.isFinite(s.y()[i])) {
                    xMin = Math.min(xMin, s.x()[i]);
                    xMax = Math.max(xMax, s.x()[i]);
                    yMin = Math.min(yMin, s.y()[i]);
                    yMax = Math.max(yMax, s.y()[i]);
                }
            }
        }
        if (!Double.isFinite(xMin)) {
            xMin = 0;
            xMax = 1;
            yMin = 0;
            yMax = 1;
        }
        double[] xr = padded(xMin, xMax, 0);
        double[] yr = padded(yMin, yMax, 0.05);
        drawAxes(g, xr, yr);
        for (int si = 0; si < series.size(); si++) {
            Series s = series.get(si);
            Color color = PALETTE[si % PALETTE.length];
            g.setColor(color);
            g.setStroke(new BasicStroke(2f));
            int px = -1, py = -1;
            for (int i = 0; i < s.x().length; i++) {
                if (!Double.isFinite(s.y()[i])) {
                    continue;
                }
                int cx = sx(s.x()[i], xr);
                int cy = sy(s.y()[i], yr);
                if (px >= 0) {
                    g.drawLine(px, py, cx, cy);
                }
                if (s.x().length <= 30) {
                    g.fillOval(cx - 3, cy - 3, 6, 6);
                }
                px = cx;
                py = cy;
            }
            g.fillRect(WIDTH - RIGHT + 15, TOP + 10 + 20 * si, 14, 4);
            g.setColor(Color.BLACK);
            g.drawString(s.name(), WIDTH - RIGHT + 35, TOP + 16 + 20 * si);
        }
    }

    private void drawBars(Graphics2D g) {
        double max = 0;
        for (double v : barValues) {
            max = Math.max(max, v);
        }
        double[] yr = {0, max <= 0 ? 1 : max * 1.1};
        double[] xr = {0, barValues.length};
        drawAxes(g, null, yr);
        int plotW = WIDTH - LEFT - RIGHT;
        double slot = (double) plotW / barValues.length;
        FontMetrics fm = g.getFontMetrics();
        for (int i = 0; i < barValues.length; i++) {
            int x0 = (int) (LEFT + i * slot + slot * 0.1);
            int w = Math.max(1, (int) (slot * 0.8));
            int y = sy(barValues[i], yr);
            g.setColor(PALETTE[0]);
            g.fillRect(x0, y, w, HEIGHT - BOTTOM - y);
            g.setColor(Color.BLACK);
            String label = barLabels.get(i);
            if (barValues.length <= 24 || i % Math.max(1, barValues.length / 12) == 0) {
                g.drawString(label, x0 + w / 2 - fm.stringWidth(label) / 2, HEIGHT - BOTTOM + 15);
            }
        }
    }

    private void drawAxes(Graphics2D g, double[] xr, double[] yr) {
        g.setColor(Color.BLACK);
        g.setStroke(new BasicStroke(1f));
        g.drawLine(LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT, HEIGHT - BOTTOM);
        g.drawLine(LEFT, TOP, LEFT, HEIGHT - BOTTOM);
        for (int t = 0; t <= 5; t++) {
            double yv = yr[0] + (yr[1] - yr[0]) * t / 5;
            int y = sy(yv, yr);
            g.setColor(new Color(0xE0E0E0));
            g.drawLine(LEFT + 1, y, WIDTH - RIGHT, y);
            g.setColor(Color.BLACK);
            g.drawString(format(yv), 10 + 20, y + 4);
            if (xr != null) {
                double xv = xr[0] + (xr[1] - xr[0]) * t / 5;
                g.drawString(format(xv), sx(xv, xr) - 12, HEIGHT - BOTTOM + 18);
            }
        }
    }

    private static double[] padded(double min, double max, double frac) {
        if (max - min < 1e-12) {
            return new double[]{min - 1, max + 1};
        }
        double pad = (max - min) * frac;
        return new double[]{min - pad, max + pad};
    }

    private static int sx(double x, double[] xr) {
        return (int) Math.round(LEFT + (x - xr[0]) / (xr[1] - xr[0]) * (WIDTH - LEFT - RIGHT));
    }

    private static int sy(double y, double[] yr) {
        return (int) Math.round(HEIGHT - BOTTOM - (y - yr[0]) / (yr[1] - yr[0]) * (HEIGHT - TOP - BOTTOM));
    }

    private static String format(double v) {
        double a = Math.abs(v);
        if (a != 0 && (a >= 1e5 || a < 1e-2)) {
            return String.format(Locale.ROOT, "%.2e", v);
        }
        return String.format(Locale.ROOT, a >= 100 ? "%.0f" : "%.3g", v);
    }
}
