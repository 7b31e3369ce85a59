package dev.spiel4j.hub;

import com.fasterxml.jackson.databind.JsonNode;
import dev.spiel4j.io.JsonFiles;
import dev.spiel4j.loader.HfCheckpoint;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Which files of a checkpoint repository spiel4j needs (what {@link HfCheckpoint} reads, and the side files Python
 * tools expect beside it): {@code config.json}, {@code generation_config.json}, the tokenizer files, and the
 * weights as {@code model.safetensors} or {@code model.safetensors.index.json} plus the shards it names. Nothing
 * else is fetched: no {@code .bin}, ONNX or GGUF copies, no README. A repository with only PyTorch pickles is refused.
 */
final class CheckpointFiles {
    static final String TOKENIZER_JSON = "tokenizer.json";
    static final String SENTENCEPIECE_MODEL = "tokenizer.model";
    private static final List<String> SIDE_FILES = List.of(HfCheckpoint.CONFIG, "generation_config.json",
            TOKENIZER_JSON, SENTENCEPIECE_MODEL, "tokenizer_config.json", "special_tokens_map.json");

    private CheckpointFiles() {
    }

    /**
     * The files to fetch first, from the repository's file list; after them the shards, which only the index
     * names ({@link #shards}).
     */
    static List<String> select(HubLocation repo, Collection<String> listed) {
        Set<String> files = Set.copyOf(listed);
        if (!files.contains(HfCheckpoint.CONFIG)) {
            List<String> ggufs = listed.stream().filter(f -> f.endsWith(".gguf")).sorted().toList();
            throw new HubException(repo + ": the repository has no " + HfCheckpoint.CONFIG + ", so it is no Hugging"
                    + " Face checkpoint" + (ggufs.isEmpty() ? "" : "; it holds GGUF files: name one, e.g. "
                    + repo.withFile(ggufs.get(0))));
        }
        if (!files.contains(TOKENIZER_JSON) && !files.contains(SENTENCEPIECE_MODEL)) {
            throw new HubException(repo + ": the repository has neither " + TOKENIZER_JSON + " nor "
                    + SENTENCEPIECE_MODEL + "; spiel4j needs one of them");
        }
        List<String> selected = new ArrayList<>(SIDE_FILES.stream().filter(files::contains).toList());
        if (files.contains(HfCheckpoint.INDEX)) {
            selected.add(HfCheckpoint.INDEX);
        } else if (files.contains(HfCheckpoint.WEIGHTS)) {
            selected.add(HfCheckpoint.WEIGHTS);
        } else {
            List<String> pickles = listed.stream().filter(f -> f.endsWith(".bin") || f.endsWith(".pt")
                    || f.endsWith(".pth")).sorted().toList();
            throw new HubException(repo + ": the repository has no " + HfCheckpoint.WEIGHTS + " or "
                    + HfCheckpoint.INDEX + (pickles.isEmpty() ? "" : "; its weights are PyTorch pickles only ("
                    + String.join(", ", pickles) + "), which spiel4j never loads (unpickling runs code). Use a"
                    + " revision with safetensors weights, or convert them in Python (load with transformers,"
                    + " then save_pretrained(dir, safe_serialization=True)) and give the directory"));
        }
        return selected;
    }

    /** The shards a downloaded index names; each must be a file of the repository. */
    static List<String> shards(HubLocation repo, Path index, Collection<String> listed) {
        Set<String> shards = new TreeSet<>();
        JsonNode weightMap = JsonFiles.readObject(index).path("weight_map");
        weightMap.elements().forEachRemaining(shard -> shards.add(shard.asText()));
        if (shards.isEmpty()) {
            throw new HubException(repo + ": " + HfCheckpoint.INDEX + " has no weight_map");
        }
        for (String shard : shards) {
            if (!listed.contains(shard)) {
                throw new HubException(repo + ": " + HfCheckpoint.INDEX + " names the shard '" + shard
                        + "', which the repository does not have");
            }
        }
        return List.copyOf(shards);
    }

    /**
     * What a cached snapshot lacks of a checkpoint (without the file list, which only the Hub has): the config, a
     * tokenizer, the weights and every shard its index names. Empty when it is complete.
     */
    static List<String> missing(Path snapshot) {
        List<String> missing = new ArrayList<>();
        if (!Files.exists(snapshot.resolve(HfCheckpoint.CONFIG))) {
            missing.add(HfCheckpoint.CONFIG);
        }
        if (!Files.exists(snapshot.resolve(TOKENIZER_JSON)) && !Files.exists(snapshot.resolve(SENTENCEPIECE_MODEL))) {
            missing.add(TOKENIZER_JSON + " or " + SENTENCEPIECE_MODEL);
        }
        Path index = snapshot.resolve(HfCheckpoint.INDEX);
        if (Files.exists(index)) {
            JsonFiles.readObject(index).path("weight_map").elements().forEachRemaining(shard -> {
                if (!missing.contains(shard.asText()) && !Files.exists(snapshot.resolve(shard.asText()))) {
                    missing.add(shard.asText());
                }
            });
        } else if (!Files.exists(snapshot.resolve(HfCheckpoint.WEIGHTS))) {
            missing.add(HfCheckpoint.WEIGHTS + " (or " + HfCheckpoint.INDEX + " and its shards)");
        }
        return missing;
    }
}
