package dev.spiel4j.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DeviceSettingTest {

    @Test
    void parsesTheThreeFormsAndWritesThemBack() {
        assertEquals(DeviceSetting.AUTO, DeviceSetting.parse("auto"));
        assertEquals(DeviceSetting.CPU, DeviceSetting.parse("CPU"));
        assertEquals(DeviceSetting.gpu(1), DeviceSetting.parse("gpu:1"));
        for (String text : List.of("auto", "cpu", "gpu:0", "gpu:12")) {
            assertEquals(text, DeviceSetting.parse(text).toString());
        }
    }

    @Test
    void anythingElseIsRefusedQuotingIt() {
        for (String bad : List.of("tpu", "gpu", "gpu:", "gpu:-1", "gpu:1x", "gpu:99999999999", "")) {
            String m = assertThrows(IllegalArgumentException.class, () -> DeviceSetting.parse(bad)).getMessage();
            assertTrue(m.contains("auto, cpu or gpu:N") && m.contains("'" + bad + "'"), m);
        }
        assertThrows(IllegalArgumentException.class, () -> new DeviceSetting(DeviceSetting.Kind.CPU, 1));
    }

    @Test
    void resolvesToTheEnginesDevicesAndNamesAMissingGpuWithTheSetting() {
        Engine engine = Engine.getInstance();
        assertEquals(Device.cpu(), DeviceSetting.CPU.resolve("device"));
        assertEquals(engine.defaultDevice(), DeviceSetting.AUTO.resolve("device"));
        int gpus = engine.getGpuCount();
        String m = assertThrows(IllegalArgumentException.class, () -> DeviceSetting.gpu(gpus).resolve("--device"))
                .getMessage();
        assertTrue(m.startsWith("--device gpu:" + gpus + ": ") && m.contains(gpus + " GPU(s)"), m);
    }
}
