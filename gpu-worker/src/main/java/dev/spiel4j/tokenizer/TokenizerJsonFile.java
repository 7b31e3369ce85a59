package dev.spiel4j.tokenizer;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.spiel4j.io.JsonFiles;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link SentencePieceBpe} as the Hugging Face {@code tokenizers} library's {@code tokenizer.json}, the way
 * {@code transformers} converts a LLaMA SentencePiece model (its {@code LlamaConverter}, non-legacy): a BPE model
 * with byte fallback, a Metaspace pre-tokenizer that prepends U+2581 to the first word only, BOS added by a template,
 * and the decoder that undoes all of it. Python tools then load the tokenizer without SentencePiece or protobuf.
 *
 * <p>BPE needs merges, which SentencePiece does not store: like {@code transformers}' {@code generate_merges}, every
 * split of a piece into two pieces of the vocabulary is a merge, ranked by the merged piece's id, then by the
 * lengths of the two parts; the splits of one piece are ordered by the parts' ids.
 */
final class TokenizerJsonFile {
    private static final String SPACE = "\u2581";

    private TokenizerJsonFile() {
    }

    static ObjectNode of(SentencePieceBpe t) {
        ObjectNode root = JsonFiles.MAPPER.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int id = 0; id < t.vocabSize(); id++) {
            int type = t.type(id);
            if (type == SentencePieceBpe.UNKNOWN || type == SentencePieceBpe.CONTROL
                    || type == SentencePieceBpe.USER_DEFINED) {
                added.addObject().put("id", id).put("content", t.piece(id)).put("single_word", false)
                        .put("lstrip", false).put("rstrip", false).put("normalized", false)
                        .put("special", type != SentencePieceBpe.USER_DEFINED);
            }
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", SPACE)
                .put("prepend_scheme", "first").put("split", false);
        root.set("post_processor", bosTemplate(t.piece(t.bosId()), t.bosId()));
        ObjectNode decoder = root.putObject("decoder").put("type", "Sequence");
        ArrayNode steps = decoder.putArray("decoders");
        ObjectNode replace = steps.addObject().put("type", "Replace");
        replace.putObject("pattern").put("String", SPACE);
        replace.put("content", " ");
        steps.addObject().put("type", "ByteFallback");
        steps.addObject().put("type", "Fuse");
        steps.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);

        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").putNull("dropout");
        model.putNull("unk_token").putNull("continuing_subword_prefix").putNull("end_of_word_suffix");
        model.put("fuse_unk", true).put("byte_fallback", true).put("ignore_merges", false);
        Map<String, Integer> vocab = new LinkedHashMap<>();
        ObjectNode vocabNode = model.putObject("vocab");
        for (int id = 0; id < t.vocabSize(); id++) {
            vocab.put(t.piece(id), id);
            vocabNode.put(t.piece(id), id);
        }
        ArrayNode merges = model.putArray("merges");
        for (String[] m : merges(vocab)) {
            merges.addArray().add(m[0]).add(m[1]);
        }
        return root;
    }

    /** BOS before a sequence (and before each of a pair, the second with type id 1), as LLaMA's tokenizer adds it. */
    private static ObjectNode bosTemplate(String bos, int bosId) {
        ObjectNode p = JsonFiles.MAPPER.createObjectNode().put("type", "TemplateProcessing");
        ArrayNode single = p.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ArrayNode pair = p.putArray("pair");
        pair.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", bos).put("type_id", 1);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode special = p.putObject("special_tokens").putObject(bos).put("id", bos);
        special.putArray("ids").add(bosId);
        special.putArray("tokens").add(bos);
        return p;
    }

    /** Every (left, right) split of a vocabulary piece into two vocabulary pieces, in BPE rank order. */
    static List<String[]> merges(Map<String, Integer> vocab) {
        record Merge(String left, String right, int rank) {
        }
        List<Merge> all = new ArrayList<>();
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            String piece = e.getKey();
            List<Merge> local = new ArrayList<>();
            // split between code points, as Python slices a str
            for (int i = piece.offsetByCodePoints(0, 1); i < piece.length(); i = piece.offsetByCodePoints(i, 1)) {
                String left = piece.substring(0, i);
                String right = piece.substring(i);
                if (vocab.containsKey(left) && vocab.containsKey(right)) {
                    local.add(new Merge(left, right, e.getValue()));
                }
            }
            local.sort(Comparator.comparingInt((Merge m) -> vocab.get(m.left()))
                    .thenComparingInt(m -> vocab.get(m.right())));
            all.addAll(local);
        }
        all.sort(Comparator.comparingInt(Merge::rank)
                .thenComparingInt((Merge m) -> m.left().codePointCount(0, m.left().length()))
                .thenComparingInt(m -> m.right().codePointCount(0, m.right().length())));
        return all.stream().map(m -> new String[]{m.left(), m.right()}).toList();
    }
}
