package dev.spiel4j.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ExampleParserTest {

    private static Parsed json(String record) {
        return ExampleParser.JSON.decode("t.jsonl:3", record.getBytes(StandardCharsets.UTF_8));
    }

    private static Example example(String record) {
        return assertInstanceOf(Example.class, json(record));
    }

    private static String reason(String record) {
        Rejected r = assertInstanceOf(Rejected.class, json(record));
        assertEquals("t.jsonl:3", r.sourcePosition());
        return r.reason();
    }

    @Test
    void alpacaWithAndWithoutInputUsesTheStanfordTemplate() {
        Example noInput = example("{\"instruction\":\"Add 2 and 3.\",\"input\":\"\",\"output\":\"5\"}");
        assertEquals("t.jsonl:3", noInput.id());
        assertEquals("Below is an instruction that describes a task. Write a response that appropriately completes"
                + " the request.\n\n### Instruction:\nAdd 2 and 3.\n\n### Response:\n", noInput.prompt());
        assertEquals("5", noInput.response());
        Example withInput = example("{\"instruction\":\"Translate.\",\"input\":\"Hallo\",\"output\":\"Hello\"}");
        assertTrue(withInput.prompt().contains("paired with an input"));
        assertTrue(withInput.prompt().endsWith("### Instruction:\nTranslate.\n\n### Input:\nHallo\n\n### Response:\n"));
        // input is optional
        assertEquals(noInput.prompt(), example("{\"instruction\":\"Add 2 and 3.\",\"output\":\"5\"}").prompt());
    }

    @Test
    void promptResponseCompletionQuestionAndText() {
        Example pr = example("{\"prompt\":\"P\",\"response\":\"R\"}");
        assertEquals("P", pr.prompt());
        assertEquals("R", pr.response());
        Example pc = example("{\"prompt\":\"P\",\"completion\":\"C\"}");
        assertEquals("C", pc.response());
        Example qa = example("{\"question\":\"2+2?\",\"answer\":\"4\\n#### 4\"}");
        assertEquals("Question: 2+2?\nAnswer: ", qa.prompt());
        assertEquals("4\n#### 4", qa.response());
        Example text = example("{\"text\":\"Once upon a time.\"}");
        assertEquals("", text.prompt());
    }

    @Test
    void messagesRenderHistoryAndTrainOnTheLastAssistantTurn() {
        Example chat = example("{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                + "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello\"},"
                + "{\"role\":\"user\",\"content\":\"Bye\"},{\"role\":\"assistant\",\"content\":\"Goodbye\"}]}");
        assertEquals("<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\nHello\n<|user|>\nBye\n<|assistant|>\n",
                chat.prompt());
        assertEquals("Goodbye", chat.response());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "{\"prompt\":\"P\",\"response\":|malformed JSON",
        "[1,2]|wrong type: expected a JSON object, found array",
        "\"just a string\"|wrong type: expected a JSON object, found string",
        "{\"instruction\":\"x\"}|missing field 'output'",
        "{\"instruction\":\"x\",\"output\":7}|wrong type: field 'output' must be a string, is number",
        "{\"instruction\":\"x\",\"input\":null,\"output\":\"y\"}|wrong type: field 'input' must be a string, is null",
        "{\"instruction\":\" \",\"output\":\"y\"}|empty field 'instruction'",
        "{\"prompt\":\"P\",\"response\":\"  \"}|empty response: field 'response' is empty",
        "{\"question\":\"q\",\"answer\":\"\"}|empty response: field 'answer' is empty",
        "{\"prompt\":\"P\"}|missing field 'response'",
        "{\"foo\":1,\"bar\":2}|unknown format: fields [foo, bar]",
        "{\"messages\":{}}|wrong type: field 'messages' must be an array, is object",
        "{\"messages\":[]}|empty response: field 'messages' is an empty array",
        "{\"messages\":[{\"role\":\"user\"}]}|missing field 'messages[0].content'",
        "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}|invalid value: messages[0].role is 'robot'",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}|invalid value: the last message messages[0] must have role 'assistant'",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"\"}]}|empty response: messages[1].content is empty",
        "''|malformed JSON: no value",
        "{\"prompt\":\"P\",\"response\":\"R\"} trailing|malformed JSON",
        "{\"prompt\":\"P\",\"response\":\"R\",\"response\":\"S\"}|malformed JSON: Duplicate field 'response'",
    })
    void badRecordsAreRejectedWithAPreciseReason(String record, String expectedStart) {
        String reason = reason(record);
        assertTrue(reason.startsWith(expectedStart), () -> "reason '" + reason + "' should start with '" + expectedStart + "'");
    }

    @Test
    void malformedJsonReasonNamesTheColumn() {
        assertTrue(reason("{\"prompt\": \"P\" \"response\": \"R\"}").contains("line 1, column 16"));
    }

    @Test
    void invalidUtf8IsRejectedWithTheByteOffset() {
        byte[] ok = "{\"prompt\":\"P\",\"response\":\"ab".getBytes(StandardCharsets.UTF_8);
        byte[] bad = new byte[ok.length + 3];
        System.arraycopy(ok, 0, bad, 0, ok.length);
        bad[ok.length] = (byte) 0xC3; // a lead byte followed by a non-continuation byte
        bad[ok.length + 1] = 'x';
        bad[ok.length + 2] = '"';
        Rejected json = assertInstanceOf(Rejected.class, ExampleParser.JSON.decode("f.jsonl:9", bad));
        assertEquals("invalid UTF-8 at byte " + ok.length + " of the record", json.reason());
        Rejected text = assertInstanceOf(Rejected.class, ExampleParser.TEXT.decode("f.txt:1", new byte[]{'a', (byte) 0xFF}));
        assertEquals("invalid UTF-8 at byte 1 of the record", text.reason());
    }

    @Test
    void textRecordsAreCausalLmExamples() {
        Example e = assertInstanceOf(Example.class,
                ExampleParser.TEXT.decode("s.txt:1", "  Once upon a time.\nThe end. \n".getBytes(StandardCharsets.UTF_8)));
        assertEquals("", e.prompt());
        assertEquals("Once upon a time.\nThe end.", e.response());
        assertInstanceOf(Rejected.class, ExampleParser.TEXT.decode("s.txt:5", " \n\t".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void rawTextOfHugeRecordsIsCut() {
        Rejected r = assertInstanceOf(Rejected.class, json("{\"bad\": \"" + "x".repeat(10_000) + "\"}"));
        assertEquals(Rejected.MAX_RAW_CHARS, r.raw().length());
    }
}
