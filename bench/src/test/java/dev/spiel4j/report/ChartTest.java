package dev.spiel4j.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChartTest {

    @Test
    void drawsSeriesInTheirColoursInsideThePlotArea(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("loss.png");
        Chart.lines("loss", "step", "nats", List.of(
                new Chart.Series("train", new double[]{0, 1, 2, 3}, new double[]{3, 2, 1.5, 1.2}),
                new Chart.Series("eval", new double[]{0, 3}, new double[]{3.1, 1.4}))).writePng(png);
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(900, img.getWidth());
        assertTrue(countColour(img, 0x1f77b4) > 200, "the first series is drawn");
        assertTrue(countColour(img, 0xd62728) > 100, "the second series is drawn");
    }

    @Test
    void barHeightsFollowTheValues(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("ages.png");
        Chart.bars("ages", "age", "slots", List.of("a", "b"), new double[]{10, 5}).writePng(png);
        BufferedImage img = ImageIO.read(png.toFile());
        List<Integer> heights = barHeights(img, 0x1f77b4);
        assertEquals(2, heights.size(), "bars: " + heights);
        assertEquals(2.0, (double) heights.get(0) / heights.get(1), 0.05);
    }

    @Test
    void refusesMismatchedSeries() {
        assertThrows(IllegalArgumentException.class, () -> new Chart.Series("s", new double[2], new double[3]));
    }

    private static int countColour(BufferedImage img, int rgb) {
        int n = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                n += (img.getRGB(x, y) & 0xFFFFFF) == rgb ? 1 : 0;
            }
        }
        return n;
    }

    /** The tallest column of each run of adjacent columns holding {@code rgb}, left to right. */
    private static List<Integer> barHeights(BufferedImage img, int rgb) {
        List<Integer> bars = new java.util.ArrayList<>();
        int tallest = 0;
        for (int x = 0; x < img.getWidth(); x++) {
            int n = 0;
            for (int y = 0; y < img.getHeight(); y++) {
                n += (img.getRGB(x, y) & 0xFFFFFF) == rgb ? 1 : 0;
            }
            if (n > 0) {
                tallest = Math.max(tallest, n);
            } else if (tallest > 0) {
                bars.add(tallest);
                tallest = 0;
            }
        }
        if (tallest > 0) {
            bars.add(tallest);
        }
        return bars;
    }
}
