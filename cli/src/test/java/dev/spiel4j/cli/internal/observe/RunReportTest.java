package dev.spiel4j.cli.internal.observe;

import dev.spiel4j.proto.v1.RunStatus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.spiel4j.cli.internal.observe.Telemetry.buckets;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The report of a synthetic run directory: charts that show the data, and a page that shows the charts. */
class RunReportTest {
    private static final int BAR = 0x1f77b4;   // the chart palette's first colour: bars and the first series
    private static final int SECOND = 0xd62728;
    private static final long[] AGES = {50, 30, 15, 5};

    @TempDir
    Path run;

    private void writeRun() {
        try (RunLog log = RunLog.open(run, false)) {
            log.append(Telemetry.status("r7", RunStatus.State.STARTED, 0, ""));
            for (int s = 1; s <= 100; s++) {
                log.append(Telemetry.step("r7", s, 100, 3.0 * Math.exp(-s / 40.0) + 1));
                if (s % 25 == 0) {
                    log.append(Telemetry.evalLoss("r7", s, "held-out", 3.2 * Math.exp(-s / 40.0) + 1.1));
                    log.append(Telemetry.accuracy("r7", s, "arc_easy_test.jsonl", 0.2 + s / 1000.0));
                    log.append(Telemetry.accuracy("r7", s, "mmlu_zero_shot_val.jsonl", 0.25));
                }
                if (s % 20 == 0) {
                    log.append(Telemetry.selection("r7", s, s == 100 ? buckets(AGES) : buckets(1, 2)));
                }
            }
            log.append(Telemetry.checkpoint("r7", 100));
            log.append(Telemetry.status("r7", RunStatus.State.COMPLETED, 100, "done"));
        }
    }

    @Test
    void chartsAndPageOfACompleteRun() throws IOException {
        writeRun();
        RunReport.Written written = RunReport.write(run);

        assertEquals(List.of(run.resolve("loss.png"), run.resolve("eval_accuracy.png"),
                run.resolve("age_histogram.png")), written.charts());
        for (Path png : written.charts()) {
            BufferedImage img = ImageIO.read(png.toFile());
            assertEquals(900, img.getWidth(), png.toString());
            assertEquals(520, img.getHeight(), png.toString());
        }
        BufferedImage loss = ImageIO.read(run.resolve("loss.png").toFile());
        assertTrue(count(loss, BAR) > 300, "train curve drawn");
        assertTrue(count(loss, SECOND) > 100, "eval curve drawn");
        BufferedImage accuracy = ImageIO.read(run.resolve("eval_accuracy.png").toFile());
        assertTrue(count(accuracy, BAR) > 100 && count(accuracy, SECOND) > 100, "one curve per data set");

        // The age histogram is the last selection's: four bars whose heights follow its counts.
        List<Integer> heights = barHeights(ImageIO.read(run.resolve("age_histogram.png").toFile()));
        assertEquals(AGES.length, heights.size(), "bars " + heights);
        for (int i = 1; i < AGES.length; i++) {
            assertEquals((double) AGES[i] / AGES[0], (double) heights.get(i) / heights.get(0), 0.02,
                    "bar " + i + " of " + heights);
        }

        String html = Files.readString(written.html());
        assertEquals(run.resolve("report.html"), written.html());
        for (String png : List.of("loss.png", "eval_accuracy.png", "age_histogram.png")) {
            assertTrue(html.contains("<img src=\"" + png + "\""), png);
        }
        assertTrue(html.contains("<th>status</th><td>COMPLETED: done</td>"), html);
        assertTrue(html.contains("<th>steps</th><td>100 of 100</td>"), html);
        assertTrue(html.contains(String.format("<th>final train loss</th><td>%.4f</td>", 3.0 * Math.exp(-2.5) + 1)),
                html);
        assertTrue(html.contains("<th>eval arc_easy_test.jsonl</th><td>accuracy 0.3000, 40 examples, step 100</td>"),
                html);
        assertTrue(html.contains("<th>active slots at the end</th><td>100 in 2 modules</td>"), html);
        assertTrue(html.contains("<th>reselections</th><td>5</td>"), html);
        assertFalse(html.contains("Not shown"), html);
    }

    @Test
    void aRunWithoutEvaluationsOrReselectionsSaysWhatIsMissing() throws IOException {
        try (RunLog log = RunLog.open(run, false)) {
            log.append(Telemetry.step("lora-<1>", 1, 0, 2.0));
            log.append(Telemetry.step("lora-<1>", 2, 0, 1.9));
        }
        RunReport.Written written = RunReport.write(run);
        assertEquals(List.of(run.resolve("loss.png")), written.charts());
        String html = Files.readString(written.html());
        assertTrue(html.contains("<title>spiel4j run lora-&lt;1&gt;</title>"), html);
        assertTrue(html.contains("<th>steps</th><td>2</td>"), html);
        assertTrue(html.contains("no multiple-choice evaluation") && html.contains("no reselection"), html);
        assertFalse(Files.exists(run.resolve("age_histogram.png")));
    }

    private static int count(BufferedImage img, int rgb) {
        int n = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                n += (img.getRGB(x, y) & 0xFFFFFF) == rgb ? 1 : 0;
            }
        }
        return n;
    }

    /** Height in pixels of each bar, left to right: runs of bar colour along a row just above the x axis. */
    private static List<Integer> barHeights(BufferedImage img) {
        int baseline = -1;
        for (int y = img.getHeight() - 1; y >= 0 && baseline < 0; y--) {
            for (int x = 0; x < img.getWidth(); x++) {
                if ((img.getRGB(x, y) & 0xFFFFFF) == BAR) {
                    baseline = y;
                    break;
                }
            }
        }
        List<Integer> heights = new ArrayList<>();
        boolean inBar = false;
        for (int x = 0; x < img.getWidth(); x++) {
            boolean bar = (img.getRGB(x, baseline) & 0xFFFFFF) == BAR;
            if (bar && !inBar) {
                int top = baseline;
                while (top > 0 && (img.getRGB(x + 2, top - 1) & 0xFFFFFF) == BAR) {
                    top--;
                }
                heights.add(baseline - top + 1);
            }
            inBar = bar;
        }
        return heights;
    }
}
