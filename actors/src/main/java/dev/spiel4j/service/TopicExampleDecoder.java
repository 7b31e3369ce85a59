package dev.spiel4j.service;

import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.spiel4j.data.ExampleParser;
import dev.spiel4j.data.Parsed;
import dev.spiel4j.data.RecordDecoder;
import dev.spiel4j.data.Rejected;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.proto.v1.ChatMessage;
import dev.spiel4j.proto.v1.TrainingExample;

import java.nio.charset.StandardCharsets;

/**
 * Decodes the input topic's {@code spiel4j.v1.TrainingExample} records. Each format is rewritten as the JSON
 * object the file formats use and handed to {@link ExampleParser#JSON}, so topic and file examples get the same
 * templates and the same validation. The example's id, when set, is its id in the run (what de-duplication
 * keys on); otherwise its topic position is.
 */
final class TopicExampleDecoder implements RecordDecoder {

    @Override
    public Parsed decode(String sourceId, byte[] bytes) {
        TrainingExample example;
        try {
            example = TrainingExample.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
            return new Rejected(sourceId, "malformed record: not a spiel4j.v1.TrainingExample (" + e.getMessage()
                    + ")", new String(bytes, StandardCharsets.UTF_8));
        }
        String id = example.getId().isEmpty() ? sourceId : example.getId();
        ObjectNode o = JsonFiles.MAPPER.createObjectNode();
        switch (example.getContentCase()) {
            case TEXT -> o.put("text", example.getText().getText());
            case INSTRUCTION -> o.put("instruction", example.getInstruction().getInstruction())
                    .put("input", example.getInstruction().getInput())
                    .put("output", example.getInstruction().getOutput());
            case PROMPT_RESPONSE -> o.put("prompt", example.getPromptResponse().getPrompt())
                    .put("response", example.getPromptResponse().getResponse());
            case QUESTION_ANSWER -> o.put("question", example.getQuestionAnswer().getQuestion())
                    .put("answer", example.getQuestionAnswer().getAnswer());
            case CONVERSATION -> {
                var messages = o.putArray("messages");
                for (ChatMessage m : example.getConversation().getMessagesList()) {
                    messages.addObject().put("role", m.getRole()).put("content", m.getContent());
                }
            }
            case CONTENT_NOT_SET -> {
                return new Rejected(id, "missing field: the TrainingExample has no content", example.toString());
            }
        }
        return ExampleParser.JSON.decode(id, o.toString().getBytes(StandardCharsets.UTF_8));
    }
}
