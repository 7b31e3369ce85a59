package dev.spiel4j.hub;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.URI;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HubLocationTest {
    private static final URI HUB = URI.create("https://huggingface.co");

    @Test
    void readsEveryForm() {
        HubLocation repo = HubLocation.parse("hf://meta-llama/Llama-2-7b-hf");
        assertEquals(new HubLocation(HubLocation.Type.MODEL, "meta-llama/Llama-2-7b-hf", "main", Optional.empty()),
                repo);
        assertEquals("models--meta-llama--Llama-2-7b-hf", repo.cacheFolder());
        assertEquals(URI.create("https://huggingface.co/api/models/meta-llama/Llama-2-7b-hf/revision/main"),
                repo.infoUrl(HUB));

        HubLocation file = HubLocation.parse("hf://TheBloke/Llama-2-7B-GGUF@v1.0/sub dir/llama-2-7b.Q8_0.gguf");
        assertEquals(Optional.of("sub dir/llama-2-7b.Q8_0.gguf"), file.file());
        assertEquals("v1.0", file.revision());
        assertEquals(URI.create("https://huggingface.co/TheBloke/Llama-2-7B-GGUF/resolve/v1.0/sub%20dir/"
                + "llama-2-7b.Q8_0.gguf"), file.fileUrl(HUB, file.revision(), file.file().get()));

        HubLocation data = HubLocation.parse("hf://datasets/tatsu-lab/alpaca@refs%2Fconvert%2Fparquet/data/x.json");
        assertEquals(HubLocation.Type.DATASET, data.type());
        assertEquals("refs/convert/parquet", data.revision());
        assertEquals("datasets--tatsu-lab--alpaca", data.cacheFolder());
        assertEquals(URI.create("https://huggingface.co/datasets/tatsu-lab/alpaca/resolve/refs%2Fconvert%2Fparquet/"
                + "data/x.json"), data.fileUrl(HUB, data.revision(), "data/x.json"));
        assertEquals(URI.create("https://huggingface.co/api/datasets/tatsu-lab/alpaca/revision/refs%2Fconvert%2F"
                + "parquet"), data.infoUrl(HUB));

        for (String canonical : new String[]{"hf://meta-llama/Llama-2-7b-hf",
                "hf://TheBloke/Llama-2-7B-GGUF@v1.0/sub dir/llama-2-7b.Q8_0.gguf",
                "hf://datasets/tatsu-lab/alpaca@refs%2Fconvert%2Fparquet/data/x.json"}) {
            assertEquals(canonical, HubLocation.parse(canonical).toString());
        }
        assertTrue(HubLocation.isHub("hf://a/b"));
        assertFalse(HubLocation.isHub("../shared/assets/model/stories260K.gguf"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"hf://gpt2", "hf://org/", "hf://datasets/org/data", "hf://spaces/org/app",
            "hf://org/repo@/x", "hf://org/repo@a..b", "hf://org/re--po", "hf://org/repo/../x", "hf://org/repo/a//b",
            "hf://-org/repo", "hf://org/repo@%2Fetc"})
    void refusesMalformedLocationsNamingThem(String uri) {
        String m = assertThrows(IllegalArgumentException.class, () -> HubLocation.parse(uri)).getMessage();
        assertTrue(m.startsWith(uri + ": "), m);
    }
}
