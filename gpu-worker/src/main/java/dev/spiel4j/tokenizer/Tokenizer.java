package dev.spiel4j.tokenizer;

/** Text to token ids and back. Implementations are immutable and thread-safe. */
public interface Tokenizer {

    /** Encodes text as the model's tokenizer would, without BOS/EOS. */
    int[] encode(String text);

    /** Decodes ids to text; special tokens are dropped. */
    String decode(int[] ids);

    int vocabSize();

    int bosId();

    int eosId();
}
