package dev.spiel4j.cli.internal.observe;

import com.google.protobuf.Timestamp;
import dev.spiel4j.proto.v1.AgeBucket;
import dev.spiel4j.proto.v1.CheckpointWritten;
import dev.spiel4j.proto.v1.EvalResult;
import dev.spiel4j.proto.v1.Metrics;
import dev.spiel4j.proto.v1.ModuleSelection;
import dev.spiel4j.proto.v1.RunEvent;
import dev.spiel4j.proto.v1.RunStatus;
import dev.spiel4j.proto.v1.SelectionEvent;

import java.util.List;

/** Synthetic metrics and events for the tests; times are one second per step from T0. */
final class Telemetry {
    static final long T0 = 1_700_000_000L;

    private Telemetry() {
    }

    static Timestamp at(long step) {
        return Timestamp.newBuilder().setSeconds(T0 + step).build();
    }

    static Metrics step(String run, long step, long total, double loss) {
        return Metrics.newBuilder().setRunId(run).setStep(step).setTotalSteps(total).setLoss(loss)
                .setLearningRate(1e-4).setTokensPerSecond(5000).setGradNorm(0.5).setStepSeconds(0.25)
                .setTokensSeen(100 * step).setExamplesSeen(4 * step).setTime(at(step)).build();
    }

    static RunEvent status(String run, RunStatus.State state, long step, String message) {
        return RunEvent.newBuilder().setRunId(run).setTime(at(step))
                .setStatus(RunStatus.newBuilder().setState(state).setStep(step).setMessage(message)).build();
    }

    static RunEvent selection(String run, long step, List<AgeBucket> ages) {
        return RunEvent.newBuilder().setRunId(run).setTime(at(step)).setSelection(SelectionEvent.newBuilder()
                .setRunId(run).setStep(step).setFraction(0.2)
                .addModules(ModuleSelection.newBuilder().setModule("model.layers.0.self_attn.q_proj").setDropped(7)
                        .setGrown(7).setActive(40))
                .addModules(ModuleSelection.newBuilder().setModule("model.layers.0.mlp.up_proj").setDropped(3)
                        .setGrown(3).setActive(60))
                .addAllAgeHistogram(ages)).build();
    }

    static RunEvent accuracy(String run, long step, String dataset, double accuracy) {
        return RunEvent.newBuilder().setRunId(run).setTime(at(step)).setEval(EvalResult.newBuilder().setRunId(run)
                .setStep(step).setDataset(dataset).setAccuracy(accuracy).setExamples(40).setSeconds(1.5)).build();
    }

    static RunEvent evalLoss(String run, long step, String dataset, double loss) {
        return RunEvent.newBuilder().setRunId(run).setTime(at(step)).setEval(EvalResult.newBuilder().setRunId(run)
                .setStep(step).setDataset(dataset).setLoss(loss).setTokens(2048).setExamples(16).setSeconds(0.5))
                .build();
    }

    static RunEvent checkpoint(String run, long step) {
        String id = String.format("step-%06d", step);
        return RunEvent.newBuilder().setRunId(run).setTime(at(step)).setCheckpoint(CheckpointWritten.newBuilder()
                .setCheckpointId(id).setStep(step).setPath("checkpoints/" + id).setBytes(12345)).build();
    }

    static List<AgeBucket> buckets(long... countsPerTen) {
        List<AgeBucket> out = new java.util.ArrayList<>();
        for (int i = 0; i < countsPerTen.length; i++) {
            out.add(AgeBucket.newBuilder().setMinAge(10 * i).setMaxAge(10 * (i + 1)).setCount(countsPerTen[i]).build());
        }
        return out;
    }
}
