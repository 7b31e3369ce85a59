package dev.spiel4j.cli.internal.observe;

import com.fasterxml.jackson.annotation.JacksonAnnotationsInside;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonSetter;
import com.fasterxml.jackson.annotation.Nulls;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonPointer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.type.LogicalType;

import java.io.IOException;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.stream.Stream;

/**
 * The lines of {@link RunLog}'s files (the format is in its javadoc) as records that Jackson binds, for
 * {@link RunHistory}. Component names are the fields' names in camel case. Fields a newer writer adds are ignored;
 * a field a line must have is {@link Required}; an optional number or time is {@code null} when absent.
 */
final class RunLogLines {
    private RunLogLines() {
    }

    /** A field that a line of its kind must have, with a value other than {@code null}. */
    @Retention(RetentionPolicy.RUNTIME)
    @JacksonAnnotationsInside
    @JsonProperty(required = true)
    @JsonSetter(nulls = Nulls.FAIL)
    @interface Required {
    }

    /** The run a line belongs to, empty when the line does not name it. */
    record RunTag(@JsonSetter(nulls = Nulls.AS_EMPTY) String runId) {
    }

    /** The kind of an events.jsonl line, which decides the record the rest of the line binds to. */
    record EventType(@Required String type) {
    }

    /** A metrics.jsonl line; {@code tokensPerS} and {@code stepS} are so named for tokens_per_s and step_s. */
    record MetricsLine(@Required long step, @Required long totalSteps, @Required double loss, @Required double lr,
                       @Required double tokensPerS, @Required double gradNorm, @Required double stepS,
                       Double evalLoss, Instant time) {
        RunHistory.Step toStep() {
            return new RunHistory.Step(step, totalSteps, loss, lr, tokensPerS, gradNorm, stepS, optional(evalLoss),
                    Optional.ofNullable(time));
        }
    }

    record StatusLine(@Required long step, @Required String state, @JsonSetter(nulls = Nulls.AS_EMPTY) String message) {
        RunHistory.Status toStatus() {
            return new RunHistory.Status(step, state, message);
        }
    }

    /** A selection event; a writer that had no modules or no ages to report leaves them out. */
    record SelectionLine(@Required long step, double fraction,
                         @JsonSetter(nulls = Nulls.AS_EMPTY) List<ModuleLine> modules, AgeHistogramLine ageHistogram) {
        SelectionLine {
            if (ageHistogram == null) {
                ageHistogram = new AgeHistogramLine(List.of(), List.of());
            }
        }

        /** The selection with its modules' totals. */
        RunHistory.Selection toSelection() {
            return new RunHistory.Selection(step, fraction, modules.size(),
                    modules.stream().mapToLong(ModuleLine::dropped).sum(),
                    modules.stream().mapToLong(ModuleLine::grown).sum(),
                    modules.stream().mapToLong(ModuleLine::active).sum(),
                    ageHistogram.bucketEdges(), ageHistogram.counts());
        }
    }

    record ModuleLine(@Required long dropped, @Required long grown, @Required long active) {
    }

    /**
     * {@code counts[i]} slots with age in {@code [bucketEdges[i], bucketEdges[i + 1])}. Checked here, not only by
     * {@link RunHistory.Selection}, so that a bad histogram is reported with the line it is on.
     */
    record AgeHistogramLine(@JsonSetter(nulls = Nulls.AS_EMPTY) List<Long> bucketEdges,
                            @JsonSetter(nulls = Nulls.AS_EMPTY) List<Long> counts) {
        AgeHistogramLine {
            if (Stream.concat(bucketEdges.stream(), counts.stream()).anyMatch(n -> n < 0)) {
                throw new IllegalArgumentException("bucket_edges and counts must be non-negative integers, got "
                        + bucketEdges + " and " + counts);
            }
            if (!counts.isEmpty() && bucketEdges.size() != counts.size() + 1) {
                throw new IllegalArgumentException(counts.size() + " counts and " + bucketEdges.size()
                        + " bucket_edges; it needs one edge more than counts");
            }
            for (int i = 1; i < bucketEdges.size(); i++) {
                if (bucketEdges.get(i) <= bucketEdges.get(i - 1)) {
                    throw new IllegalArgumentException("bucket_edges must increase: " + bucketEdges);
                }
            }
        }
    }

    record EvalLine(@Required long step, @Required String dataset, Double loss, Double accuracy,
                    @Required long examples) {
        RunHistory.Evaluation toEvaluation() {
            return new RunHistory.Evaluation(step, dataset, optional(loss), optional(accuracy), examples);
        }
    }

    record CheckpointLine(@Required long step, @Required String checkpointId,
                          @JsonSetter(nulls = Nulls.AS_EMPTY) String path, @Required long bytes) {
        RunHistory.Checkpoint toCheckpoint() {
            return new RunHistory.Checkpoint(step, checkpointId, path, bytes);
        }
    }

    /** A Kafka outage report: {@code ongoing} when it starts, not when it ends. */
    record OutageLine(boolean ongoing) {
    }

    private static OptionalDouble optional(Double value) {
        return value == null ? OptionalDouble.empty() : OptionalDouble.of(value);
    }

    /**
     * Jackson would take {@code "12"} for a number, {@code 1.5} for an integer and {@code 12} for a string; in a run
     * log each of them is a malformed line. Numbers written as the strings "NaN" and "Infinity" (how Jackson writes a
     * diverged loss) stay numbers: Jackson reads those before it consults the coercion settings.
     */
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .defaultSetterInfo(JsonSetter.Value.forContentNulls(Nulls.FAIL))
            .withCoercionConfig(LogicalType.Integer, c -> c.setCoercion(CoercionInputShape.String, CoercionAction.Fail))
            .withCoercionConfig(LogicalType.Float, c -> c.setCoercion(CoercionInputShape.String, CoercionAction.Fail))
            .withCoercionConfig(LogicalType.Textual, c -> c.setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail))
            .addModule(new SimpleModule().addDeserializer(Instant.class, new IsoInstant()))
            .build();

    /** ISO-8601 instants as {@link RunLog} writes them (java.time is not in jackson-databind itself). */
    private static final class IsoInstant extends StdScalarDeserializer<Instant> {
        IsoInstant() {
            super(Instant.class);
        }

        @Override
        public Instant deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            if (!p.hasToken(JsonToken.VALUE_STRING)) {
                return (Instant) ctxt.handleUnexpectedToken(Instant.class, p);
            }
            try {
                return Instant.parse(p.getText());
            } catch (DateTimeParseException e) {
                return (Instant) ctxt.handleWeirdStringValue(Instant.class, p.getText(), "not an ISO-8601 instant");
            }
        }
    }

    /**
     * {@code line} bound to {@code kind}.
     *
     * @param where the line's place, {@code file:line}, that an error starts with
     * @throws IllegalArgumentException naming {@code where}, the field and what is wrong with it
     */
    static <T> T bind(String where, JsonNode line, Class<T> kind) {
        try {
            return MAPPER.treeToValue(line, kind);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(where + ": " + problem(line, e));
        }
    }

    /** What an error says a field must hold, by the type Jackson was binding it to. */
    private static final Map<Class<?>, String> KINDS = Map.of(long.class, "an integer", Long.class, "an integer",
            double.class, "a number", Double.class, "a number", boolean.class, "true or false", String.class,
            "a string", Instant.class, "an ISO-8601 instant");

    /** Jackson's error in the terms of the file: the field's path in the line, what it must be and what it is. */
    private static String problem(JsonNode line, JsonProcessingException e) {
        if (!(e instanceof JsonMappingException m) || m.getPath().isEmpty()) {
            return e.getOriginalMessage();
        }
        StringBuilder field = new StringBuilder();
        JsonPointer pointer = JsonPointer.empty();
        for (JsonMappingException.Reference r : m.getPath()) {
            if (r.getFieldName() != null) {
                field.append(field.length() == 0 ? "" : ".").append(r.getFieldName());
                pointer = pointer.appendProperty(r.getFieldName());
            } else {
                field.append('[').append(r.getIndex()).append(']');
                pointer = pointer.appendIndex(r.getIndex());
            }
        }
        String name = "field '" + field + "'";
        if (m instanceof ValueInstantiationException && m.getCause() != null) {
            return name + ": " + m.getCause().getMessage(); // a record's own check
        }
        if (m instanceof MismatchedInputException mismatch && mismatch.getTargetType() != null) {
            Class<?> type = mismatch.getTargetType();
            String kind = KINDS.getOrDefault(type, Collection.class.isAssignableFrom(type) ? "an array" : "an object");
            JsonNode value = line.at(pointer);
            return value.isMissingNode() ? name + " is missing; it must be " + kind
                    : name + " must be " + kind + ", got " + value;
        }
        return name + ": " + m.getOriginalMessage();
    }
}
