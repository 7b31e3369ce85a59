package dev.spiel4j.data;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeType;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Parses and validates records into {@link Example}s; bad records become {@link Rejected}, nothing throws.
 *
 * <p>JSON records are recognised by their fields, first match wins:
 * {@code messages} (chat), {@code instruction} (+{@code input}, {@code output}: Alpaca), {@code question}
 * (+{@code answer}), {@code prompt}+{@code completion}, {@code prompt}+{@code response}, {@code text}
 * (causal LM). Templates: {@link PromptTemplates}. A response that is empty or only whitespace is rejected;
 * prompts and responses are otherwise kept verbatim.
 */
public final class ExampleParser {
    private ExampleParser() {
    }

    /** Strict: trailing text after the object and duplicate fields are malformed records, not silently dropped. */
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    /** Plain text: the whole record is the response of an example with an empty prompt (causal LM). */
    public static final RecordDecoder TEXT = ExampleParser::parseText;

    /** One JSON object in any of the instruction formats. */
    public static final RecordDecoder JSON = ExampleParser::parseJson;

    static Parsed parseText(String sourceId, byte[] bytes) {
        String text;
        try {
            text = decodeUtf8(bytes);
        } catch (InvalidUtf8 e) {
            return new Rejected(sourceId, "invalid UTF-8 at byte " + e.offset + " of the record",
                    new String(bytes, StandardCharsets.UTF_8));
        }
        if (text.isBlank()) {
            return new Rejected(sourceId, "empty response: the text record is blank", text);
        }
        return new Example(sourceId, "", text.strip());
    }

    static Parsed parseJson(String sourceId, byte[] bytes) {
        String text;
        try {
            text = decodeUtf8(bytes);
        } catch (InvalidUtf8 e) {
            return new Rejected(sourceId, "invalid UTF-8 at byte " + e.offset + " of the record",
                    new String(bytes, StandardCharsets.UTF_8));
        }
        JsonNode node;
        try {
            node = MAPPER.readTree(text);
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            String where = at == null ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
            return new Rejected(sourceId, "malformed JSON: " + e.getOriginalMessage() + where, text);
        }
        if (node == null || node.isMissingNode()) {
            return new Rejected(sourceId, "malformed JSON: no value in the record", text);
        }
        if (!node.isObject()) {
            return new Rejected(sourceId, "wrong type: expected a JSON object, found " + typeName(node), text);
        }
        try {
            return fromObject(sourceId, node);
        } catch (BadRecord e) {
            return new Rejected(sourceId, e.getMessage(), text);
        }
    }

    private static Example fromObject(String id, JsonNode o) {
        if (o.has("messages")) {
            return fromMessages(id, o.get("messages"));
        }
        if (o.has("instruction")) {
            String instruction = requiredText(o, "instruction", true);
            String input = o.has("input") ? requiredText(o, "input", false) : "";
            return new Example(id, PromptTemplates.alpaca(instruction, input), response(o, "output"));
        }
        if (o.has("question")) {
            return new Example(id, PromptTemplates.question(requiredText(o, "question", true)), response(o, "answer"));
        }
        if (o.has("prompt")) {
            String responseField = o.has("completion") ? "completion" : "response";
            return new Example(id, requiredText(o, "prompt", false), response(o, responseField));
        }
        if (o.has("text")) {
            return new Example(id, "", response(o, "text"));
        }
        List<String> fields = new ArrayList<>();
        o.fieldNames().forEachRemaining(fields::add);
        throw new BadRecord("unknown format: fields " + fields + " match none of {instruction,input,output},"
                + " {prompt,response}, {prompt,completion}, {messages}, {question,answer}, {text}");
    }

    private static Example fromMessages(String id, JsonNode messages) {
        if (!messages.isArray()) {
            throw new BadRecord("wrong type: field 'messages' must be an array, is " + typeName(messages));
        }
        if (messages.isEmpty()) {
            throw new BadRecord("empty response: field 'messages' is an empty array");
        }
        List<PromptTemplates.Message> turns = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) {
                throw new BadRecord("wrong type: " + where + " must be an object, is " + typeName(m));
            }
            String role = requiredText(m, "role", true, where + ".role");
            if (!PromptTemplates.CHAT_ROLES.contains(role)) {
                throw new BadRecord("invalid value: " + where + ".role is '" + role + "', expected one of "
                        + PromptTemplates.CHAT_ROLES);
            }
            turns.add(new PromptTemplates.Message(role, requiredText(m, "content", false, where + ".content")));
        }
        PromptTemplates.Message last = turns.remove(turns.size() - 1);
        String where = "messages[" + turns.size() + "]";
        if (!last.role().equals("assistant")) {
            throw new BadRecord("invalid value: the last message " + where + " must have role 'assistant', has '"
                    + last.role() + "'");
        }
        if (last.content().isBlank()) {
            throw new BadRecord("empty response: " + where + ".content is empty");
        }
        return new Example(id, PromptTemplates.chat(turns), last.content());
    }

    private static String response(JsonNode o, String field) {
        String value = requiredText(o, field, false);
        if (value.isBlank()) {
            throw new BadRecord("empty response: field '" + field + "' is empty");
        }
        return value;
    }

    private static String requiredText(JsonNode o, String field, boolean nonBlank) {
        return requiredText(o, field, nonBlank, field);
    }

    private static String requiredText(JsonNode o, String field, boolean nonBlank, String label) {
        JsonNode v = o.get(field);
        if (v == null) {
            throw new BadRecord("missing field '" + label + "'");
        }
        if (!v.isTextual()) {
            throw new BadRecord("wrong type: field '" + label + "' must be a string, is " + typeName(v));
        }
        if (nonBlank && v.asText().isBlank()) {
            throw new BadRecord("empty field '" + label + "'");
        }
        return v.asText();
    }

    private static String typeName(JsonNode n) {
        JsonNodeType t = n.getNodeType();
        return t.name().toLowerCase(Locale.ROOT);
    }

    /** Strict UTF-8: a malformed sequence is an error (Java's String constructor would silently replace it). */
    private static String decodeUtf8(byte[] bytes) throws InvalidUtf8 {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        if (decoder.decode(in, out, true).isError()) {
            // On an error the input stays at the first offending byte: report it so the record can be fixed.
            throw new InvalidUtf8(in.position());
        }
        decoder.flush(out);
        return out.flip().toString();
    }

    private static final class InvalidUtf8 extends Exception {
        private final int offset;

        InvalidUtf8(int offset) {
            super(null, null, false, false);
            this.offset = offset;
        }
    }

    /** A validation failure inside one record; becomes a {@link Rejected}, never escapes. */
    private static final class BadRecord extends RuntimeException {
        BadRecord(String message) {
            super(message, null, false, false);
        }
    }
}
