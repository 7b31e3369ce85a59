package dev.spiel4j.data;

import java.util.List;

/**
 * The prompt templates the instruction formats are rendered with. The response is appended after the prompt
 * as is, so each template ends where the model starts to answer.
 *
 * <ul>
 *   <li>{@code {instruction,input,output}}: the Stanford Alpaca template (with and without input), the same text
 *       dolly's {@code prompt} fields already carry, so both data sets teach one format.</li>
 *   <li>{@code {question,answer}}: {@code "Question: <question>\nAnswer: "}.</li>
 *   <li>{@code {messages}}: each message as {@code "<|role|>\n" + content + "\n"}, followed by
 *       {@code "<|assistant|>\n"}; the last message must be the assistant's and is the response, earlier
 *       assistant turns are part of the prompt (no loss on them).</li>
 * </ul>
 */
final class PromptTemplates {
    private PromptTemplates() {
    }

    static final String ALPACA_NO_INPUT = "Below is an instruction that describes a task. "
            + "Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Response:\n";
    static final String ALPACA_WITH_INPUT = "Below is an instruction that describes a task, paired with an input "
            + "that provides further context. Write a response that appropriately completes the request.\n\n"
            + "### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n";

    /** Roles a chat message may have. */
    public static final List<String> CHAT_ROLES = List.of("system", "user", "assistant");

    /** One chat turn. */
    public record Message(String role, String content) {
    }

    /** The Alpaca prompt; an empty or blank {@code input} selects the variant without an input section. */
    public static String alpaca(String instruction, String input) {
        return input == null || input.isBlank()
                ? ALPACA_NO_INPUT.formatted(instruction)
                : ALPACA_WITH_INPUT.formatted(instruction, input);
    }

    /** The question/answer prompt. */
    public static String question(String question) {
        return "Question: " + question + "\nAnswer: ";
    }

    /** The chat prompt for the given earlier turns, ending with the assistant header. */
    public static String chat(List<Message> history) {
        StringBuilder sb = new StringBuilder();
        for (Message m : history) {
            sb.append(chatHeader(m.role())).append(m.content()).append('\n');
        }
        return sb.append(chatHeader("assistant")).toString();
    }

    private static String chatHeader(String role) {
        return "<|" + role + "|>\n";
    }
}
