package dev.spiel4j.service;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.spiel4j.data.Batch;
import dev.spiel4j.io.HostDType;
import dev.spiel4j.io.HostTensor;
import dev.spiel4j.peft.MethodState;
import dev.spiel4j.peft.sft.SelectionDecision;
import dev.spiel4j.proto.v1.ApplySelection;
import dev.spiel4j.proto.v1.ApplyStep;
import dev.spiel4j.proto.v1.ComputeGradients;
import dev.spiel4j.proto.v1.DigestRequest;
import dev.spiel4j.proto.v1.FloatTensor;
import dev.spiel4j.proto.v1.GradientsComputed;
import dev.spiel4j.proto.v1.Int64Array;
import dev.spiel4j.proto.v1.LeaveRun;
import dev.spiel4j.proto.v1.MicroBatch;
import dev.spiel4j.proto.v1.ModuleDecision;
import dev.spiel4j.proto.v1.ReplicaDigest;
import dev.spiel4j.proto.v1.StateTensor;
import dev.spiel4j.proto.v1.SyncReplica;
import dev.spiel4j.train.MicroBatchGradient;
import dev.spiel4j.train.SummedGradient;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.SerializerWithStringManifest;

import java.io.NotSerializableException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Pekko serializer of every {@link ClusterMessage}: each message record maps to its Protobuf message of
 * {@code spiel4j/v1/cluster.proto}, actor references to their serialization strings. Float arrays travel as
 * little-endian bytes (a boxed {@code repeated float} would cost an object per gradient value).
 */
public final class ClusterSerializer extends SerializerWithStringManifest {
    private static final int IDENTIFIER = 0x5391_4a01;
    private static final String SYNC = "sync";
    private static final String COMPUTE = "compute";
    private static final String COMPUTED = "computed";
    private static final String APPLY = "apply";
    private static final String APPLY_SELECTION = "apply-selection";
    private static final String REPORT_DIGEST = "report-digest";
    private static final String DIGEST = "digest";
    private static final String LEAVE = "leave";

    private final ActorRefResolver resolver;

    public ClusterSerializer(ExtendedActorSystem system) {
        this.resolver = ActorRefResolver.get(Adapter.toTyped(system));
    }

    @Override
    public int identifier() {
        return IDENTIFIER;
    }

    @Override
    public String manifest(Object o) {
        if (o instanceof GradientWorker.Sync) {
            return SYNC;
        } else if (o instanceof GradientWorker.Compute) {
            return COMPUTE;
        } else if (o instanceof GradientWorker.Computed) {
            return COMPUTED;
        } else if (o instanceof GradientWorker.Apply) {
            return APPLY;
        } else if (o instanceof GradientWorker.ApplySelection) {
            return APPLY_SELECTION;
        } else if (o instanceof GradientWorker.ReportDigest) {
            return REPORT_DIGEST;
        } else if (o instanceof GradientWorker.Digest) {
            return DIGEST;
        } else if (o instanceof GradientWorker.Leave) {
            return LEAVE;
        }
        throw new IllegalArgumentException("not a spiel4j cluster message: " + o.getClass().getName());
    }

    @Override
    public byte[] toBinary(Object o) {
        if (o instanceof GradientWorker.Sync m) {
            SyncReplica.Builder b = SyncReplica.newBuilder().setRunConfig(m.runConfig())
                    .setBaseFingerprint(m.baseFingerprint()).setTotalSteps(m.totalSteps())
                    .setMethod(m.state().method()).setStep(m.state().step());
            for (HostTensor t : m.state().tensors().values()) {
                b.addTensors(StateTensor.newBuilder().setName(t.name()).addAllShape(longs(t.shape()))
                        .setDtype(t.dtype().name()).setData(ByteString.copyFrom(t.data().duplicate())));
            }
            return b.build().toByteArray();
        } else if (o instanceof GradientWorker.Compute m) {
            ComputeGradients.Builder b = ComputeGradients.newBuilder().setStep(m.step()).setStepTokens(m.stepTokens())
                    .setChaosKill(m.chaosKill()).setReplyTo(resolver.toSerializationFormat(m.replyTo()))
                    .addAllChoices(indexArrays(m.choices()));
            for (GradientWorker.IndexedBatch ib : m.microBatches()) {
                Batch batch = ib.batch();
                MicroBatch.Builder mb = MicroBatch.newBuilder().setIndex(ib.index()).setRows(batch.size())
                        .setSeqLen(batch.seqLen()).addAllExampleIds(batch.exampleIds());
                for (int i = 0; i < batch.inputs().length; i++) {
                    mb.addInputs(batch.inputs()[i]).addTargets(batch.targets()[i])
                            .addLossMask(batch.lossMask()[i]).addAttentionMask(batch.attentionMask()[i]);
                }
                b.addMicroBatches(mb);
            }
            return b.build().toByteArray();
        } else if (o instanceof GradientWorker.Computed m) {
            GradientsComputed.Builder b = GradientsComputed.newBuilder().setStep(m.step()).setError(m.error())
                    .setComputeSeconds(m.computeSeconds());
            for (MicroBatchGradient part : m.parts()) {
                b.addParts(dev.spiel4j.proto.v1.MicroBatchGradient.newBuilder().setIndex(part.index())
                        .setNllSum(part.nllSum()).setLossTokens(part.lossTokens())
                        .addAllGradients(tensors(part.shapes(), part.values()))
                        .addAllStatistics(tensors(null, part.statistics())).addAllChoices(indexArrays(part.choices())));
            }
            return b.build().toByteArray();
        } else if (o instanceof GradientWorker.Apply m) {
            SummedGradient sum = m.sum();
            return ApplyStep.newBuilder().setStep(m.step()).setLr(m.lr()).setNllSum(sum.nllSum())
                    .setLossTokens(sum.lossTokens()).addAllSummed(tensors(sum.shapes(), sum.values()))
                    .addAllStatistics(tensors(null, sum.statistics())).addAllChoices(indexArrays(sum.choices()))
                    .build().toByteArray();
        } else if (o instanceof GradientWorker.ApplySelection m) {
            ApplySelection.Builder b = ApplySelection.newBuilder().setStep(m.step());
            for (SelectionDecision d : m.decisions()) {
                // each accessor returns a copy: taken once, not once per slot (a first reselection changes every slot)
                int[] slots = d.slots();
                long[] newIndices = d.newIndices();
                float[] first = d.seedFirstMoment();
                float[] second = d.seedSecondMoment();
                ModuleDecision.Builder md = ModuleDecision.newBuilder().setSeedSamples(d.seedSamples());
                for (int i = 0; i < slots.length; i++) {
                    md.addSlots(slots[i]).addNewIndices(newIndices[i]).addFirstMoment(first[i])
                            .addSecondMoment(second[i]);
                }
                b.addDecisions(md);
            }
            return b.build().toByteArray();
        } else if (o instanceof GradientWorker.ReportDigest m) {
            return DigestRequest.newBuilder().setStep(m.step()).setReplyTo(resolver.toSerializationFormat(m.replyTo()))
                    .build().toByteArray();
        } else if (o instanceof GradientWorker.Digest m) {
            return ReplicaDigest.newBuilder().setStep(m.step()).setDigest(m.digest()).build().toByteArray();
        } else if (o instanceof GradientWorker.Leave m) {
            return LeaveRun.newBuilder().setReason(m.reason()).build().toByteArray();
        }
        throw new IllegalArgumentException("not a spiel4j cluster message: " + o.getClass().getName());
    }

    @Override
    public Object fromBinary(byte[] bytes, String manifest) throws NotSerializableException {
        try {
            return switch (manifest) {
                case SYNC -> sync(SyncReplica.parseFrom(bytes));
                case COMPUTE -> compute(ComputeGradients.parseFrom(bytes));
                case COMPUTED -> computed(GradientsComputed.parseFrom(bytes));
                case APPLY -> apply(ApplyStep.parseFrom(bytes));
                case APPLY_SELECTION -> applySelection(ApplySelection.parseFrom(bytes));
                case REPORT_DIGEST -> {
                    DigestRequest r = DigestRequest.parseFrom(bytes);
                    yield new GradientWorker.ReportDigest(r.getStep(), resolver.resolveActorRef(r.getReplyTo()));
                }
                case DIGEST -> {
                    ReplicaDigest d = ReplicaDigest.parseFrom(bytes);
                    yield new GradientWorker.Digest(d.getStep(), d.getDigest());
                }
                case LEAVE -> new GradientWorker.Leave(LeaveRun.parseFrom(bytes).getReason());
                default -> throw new NotSerializableException("unknown spiel4j cluster message '" + manifest + "'");
            };
        } catch (InvalidProtocolBufferException e) {
            NotSerializableException n = new NotSerializableException("malformed spiel4j cluster message '" + manifest
                    + "': " + e.getMessage());
            n.initCause(e);
            throw n;
        }
    }

    private static GradientWorker.Sync sync(SyncReplica m) {
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        for (StateTensor t : m.getTensorsList()) {
            tensors.put(t.getName(), new HostTensor(t.getName(), longs(t.getShapeList()), HostDType.valueOf(t.getDtype()),
                    t.getData().asReadOnlyByteBuffer()));
        }
        return new GradientWorker.Sync(m.getRunConfig(), m.getBaseFingerprint(), m.getTotalSteps(),
                new MethodState(m.getMethod(), m.getStep(), tensors));
    }

    private GradientWorker.Compute compute(ComputeGradients m) {
        List<GradientWorker.IndexedBatch> batches = new ArrayList<>();
        for (MicroBatch mb : m.getMicroBatchesList()) {
            int n = mb.getInputsCount();
            long[] inputs = new long[n];
            long[] targets = new long[n];
            float[] lossMask = new float[n];
            float[] attentionMask = new float[n];
            for (int i = 0; i < n; i++) {
                inputs[i] = mb.getInputs(i);
                targets[i] = mb.getTargets(i);
                lossMask[i] = mb.getLossMask(i);
                attentionMask[i] = mb.getAttentionMask(i);
            }
            batches.add(new GradientWorker.IndexedBatch(mb.getIndex(), new Batch(mb.getRows(), mb.getSeqLen(), inputs,
                    targets, lossMask, attentionMask, mb.getExampleIdsList())));
        }
        ActorRef<GradientWorker.Computed> replyTo = resolver.resolveActorRef(m.getReplyTo());
        return new GradientWorker.Compute(m.getStep(), m.getStepTokens(), batches, indices(m.getChoicesList()),
                m.getChaosKill(), replyTo);
    }

    private static GradientWorker.Computed computed(GradientsComputed m) {
        List<MicroBatchGradient> parts = new ArrayList<>();
        for (dev.spiel4j.proto.v1.MicroBatchGradient p : m.getPartsList()) {
            parts.add(new MicroBatchGradient(p.getIndex(), p.getNllSum(), p.getLossTokens(),
                    shapes(p.getGradientsList()), values(p.getGradientsList()), values(p.getStatisticsList()),
                    indices(p.getChoicesList())));
        }
        return new GradientWorker.Computed(m.getStep(), parts, m.getError(), m.getComputeSeconds());
    }

    private static GradientWorker.Apply apply(ApplyStep m) {
        return new GradientWorker.Apply(m.getStep(), m.getLr(), new SummedGradient(m.getNllSum(), m.getLossTokens(),
                shapes(m.getSummedList()), values(m.getSummedList()), values(m.getStatisticsList()),
                indices(m.getChoicesList())));
    }

    /** @param shapes each array's shape; null: flat */
    private static GradientWorker.ApplySelection applySelection(ApplySelection m) {
        List<SelectionDecision> decisions = new ArrayList<>();
        for (ModuleDecision d : m.getDecisionsList()) {
            int n = d.getSlotsCount();
            int[] slots = new int[n];
            long[] indices = new long[n];
            float[] first = new float[n];
            float[] second = new float[n];
            for (int i = 0; i < n; i++) {
                slots[i] = d.getSlots(i);
                indices[i] = d.getNewIndices(i);
                first[i] = d.getFirstMoment(i);
                second[i] = d.getSecondMoment(i);
            }
            decisions.add(new SelectionDecision(slots, indices, first, second, d.getSeedSamples()));
        }
        return new GradientWorker.ApplySelection(m.getStep(), decisions);
    }

    private static List<FloatTensor> tensors(List<long[]> shapes, List<float[]> values) {
        List<FloatTensor> out = new ArrayList<>();
        for (int i = 0; i < values.size(); i++) {
            float[] v = values.get(i);
            ByteBuffer bytes = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            bytes.asFloatBuffer().put(v);
            out.add(FloatTensor.newBuilder().addAllShape(longs(shapes == null ? new long[]{v.length} : shapes.get(i)))
                    .setValues(ByteString.copyFrom(bytes)).build());
        }
        return out;
    }

    private static List<Int64Array> indexArrays(List<long[]> arrays) {
        List<Int64Array> out = new ArrayList<>();
        for (long[] a : arrays) {
            ByteBuffer bytes = ByteBuffer.allocate(8 * a.length).order(ByteOrder.LITTLE_ENDIAN);
            bytes.asLongBuffer().put(a);
            out.add(Int64Array.newBuilder().setValues(ByteString.copyFrom(bytes)).build());
        }
        return out;
    }

    private static List<long[]> indices(List<Int64Array> arrays) {
        List<long[]> out = new ArrayList<>();
        for (Int64Array a : arrays) {
            long[] v = new long[a.getValues().size() / 8];
            a.getValues().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(v);
            out.add(v);
        }
        return out;
    }

    private static List<long[]> shapes(List<FloatTensor> tensors) {
        return tensors.stream().map(t -> longs(t.getShapeList())).toList();
    }

    private static List<float[]> values(List<FloatTensor> tensors) {
        List<float[]> out = new ArrayList<>();
        for (FloatTensor t : tensors) {
            float[] v = new float[t.getValues().size() / 4];
            t.getValues().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
            out.add(v);
        }
        return out;
    }

    private static List<Long> longs(long[] values) {
        List<Long> out = new ArrayList<>(values.length);
        for (long v : values) {
            out.add(v);
        }
        return out;
    }

    private static long[] longs(List<Long> values) {
        return values.stream().mapToLong(Long::longValue).toArray();
    }
}
