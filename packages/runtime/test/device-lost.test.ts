// This file's device is lost on purpose (the GPUDevice is destroyed behind the runtime's back,
// as a driver reset would); every later call must reject with a DeviceError, not hang.
import { describe, expect, it } from "vitest";
import { DeviceError, loadPlan, matmulPlan, upload, type Executable, type Tensor } from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";
import { seededRandom } from "./random.js";

const gpu = useDevice();

describe("a lost device", () => {
  it("rejects every call with a DeviceError instead of hanging", async () => {
    const rng = seededRandom();
    const { device } = gpu;
    const executable: Executable = await loadPlan(device, matmulPlan(4, 5, 6));
    const kept: Tensor = upload(device, rng.floats(10));
    // A read-back in flight when the device goes away must settle too.
    const inflight = kept.read().then(
      () => "resolved",
      (e: unknown) => e,
    );
    device.gpu.destroy();
    const settled = await inflight;
    if (settled !== "resolved") expect(settled).toBeInstanceOf(DeviceError);

    await expect(kept.read()).rejects.toThrow(DeviceError);
    await expect(kept.read()).rejects.toThrow(/the GPU device was lost \(reason "destroyed"/);
    await expect(executable.run({ a: rng.floats(20), b: rng.floats(30) })).rejects.toThrow(/device was lost/);
    await expect(loadPlan(device, matmulPlan(2, 2, 2))).rejects.toThrow(/device was lost.*createDevice\(\)/);
    await expect(device.pipelines.module("@compute @workgroup_size(1) fn main() {}", "late")).rejects.toThrow(DeviceError);
    expect(() => upload(device, rng.floats(4))).toThrow(/device was lost/);
    expect(device.lost).toBe(true);
  });
});
