package dev.spiel4j.train;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.io.JsonFiles;

import java.nio.file.Path;

/**
 * What a {@link TrainingRun} reports; {@link #toJson} has exactly the fields of the {@code train} command's JSON.
 *
 * @param method           method name, e.g. {@code spiel-ag}
 * @param trainableParams  trainable parameters (delta count, LoRA factors, ...)
 * @param steps            optimizer steps run
 * @param evalLossBefore   mean eval loss (response tokens) before the first step
 * @param evalLossAfter    mean eval loss after the last step
 * @param stepTimeMedianS  median wall time of a step, seconds
 * @param peakRssMb        the process's peak resident memory (VmHWM) in MiB, NaN where /proc is unavailable
 * @param checkpoint       the written fine-tuning (sparse) or adapter (other methods) file
 */
public record TrainingResult(String method, long trainableParams, int steps, double evalLossBefore,
                             double evalLossAfter, double stepTimeMedianS, double peakRssMb, Path checkpoint) {

    public ObjectNode toJson() {
        ObjectNode n = JsonFiles.MAPPER.createObjectNode();
        n.put("method", method);
        n.put("trainable_params", trainableParams);
        n.put("steps", steps);
        n.put("eval_loss_before", evalLossBefore);
        n.put("eval_loss_after", evalLossAfter);
        n.put("step_time_median_s", stepTimeMedianS);
        if (Double.isFinite(peakRssMb)) {
            n.put("peak_rss_mb", peakRssMb);
        } else {
            n.putNull("peak_rss_mb");
        }
        n.put("checkpoint", checkpoint.toString());
        return n;
    }
}
