import { describe, expect, it } from "vitest";
import { doctor, formatDoctorReport } from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";

const gpu = useDevice();

describe("doctor", () => {
  it("reports the adapter and checks its copy and matmul kernels against the CPU", async () => {
    const { device } = gpu;
    const report = await doctor({ device, copyBytes: 2 ** 20, matmulSize: 67, repeats: 2 });
    expect(report.adapter).toEqual(device.adapter);
    expect(report.limits).toEqual({ ...device.limits });
    expect(report.features).toEqual([...device.features].sort());
    expect(report.copy.bytes).toBe(2 ** 20);
    expect(report.matmul).toMatchObject({ m: 67, k: 67, n: 67 });
    expect(report.matmul.maxRelError).toBeLessThan(1e-6);
    expect(report.copy.timing).toBe(device.features.has("timestamp-query") ? "gpu timestamps" : "wall clock");
    const text = formatDoctorReport(report);
    expect(text).toContain(device.adapter.description);
    expect(text).toContain(`backend    ${device.adapter.backend}`);
    expect(text).toMatch(/copy +1 MiB .* GB\/s/);
    expect(text).toMatch(/matmul +67x67x67 f32 .* GFLOP\/s/);
    // It used the given device and left it working.
    expect(() => device.check()).not.toThrow();
  });
});
