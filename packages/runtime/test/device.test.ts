import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { create } from "webgpu";
import { createDevice, DeviceError, listAdapters, OPTIONAL_FEATURES } from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";

const gpu = useDevice();

describe("createDevice", () => {
  const savedEnv = { backend: process.env.DORAFUSE_BACKEND, adapter: process.env.DORAFUSE_ADAPTER };
  afterEach(() => {
    for (const [key, value] of [["DORAFUSE_BACKEND", savedEnv.backend], ["DORAFUSE_ADAPTER", savedEnv.adapter]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it("requests every limit the adapter has, not WebGPU's defaults", async () => {
    const adapter = await create([]).requestAdapter();
    expect(adapter).not.toBeNull();
    const { device } = gpu;
    for (const key in adapter!.limits) {
      const value = (adapter!.limits as unknown as Record<string, number>)[key];
      if (typeof value === "number") expect(device.limits[key], key).toBe(value);
    }
    // WebGPU's default is 8; lavapipe offers 16 (DESIGN.md), so this proves the request went through.
    expect(device.limits.maxStorageBuffersPerShaderStage).toBeGreaterThan(8);
  });

  it("enables the optional features the adapter offers and reports its identity", async () => {
    const adapter = (await create([]).requestAdapter())!;
    const { device } = gpu;
    for (const feature of OPTIONAL_FEATURES) expect(device.features.has(feature), feature).toBe(adapter.features.has(feature));
    expect(device.adapter.description).toBe(adapter.info.description);
    expect(device.adapter.vendor).toBe(adapter.info.vendor);
    const listed = await listAdapters();
    expect(listed.map((a) => a.backend)).toContain(device.adapter.backend);
    expect(device.describe()).toContain(device.adapter.backend);
  });

  it("without a matching adapter says what was tried and how to fix it", async () => {
    const error = await createDevice({ adapter: "no-such-adapter-anywhere" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceError);
    const message = (error as Error).message;
    expect(message).toContain("no WebGPU adapter");
    expect(message).toContain("adapter=no-such-adapter-anywhere");
    expect(message).toContain("mesa-vulkan-drivers");
    expect(message).toContain("DORAFUSE_ADAPTER");
    // Dawn's own list of what it can see is passed on.
    for (const a of await listAdapters()) expect(message).toContain(a.name);
  });

  it("reads the adapter choice from DORAFUSE_ADAPTER and names the variable", async () => {
    process.env.DORAFUSE_ADAPTER = "another-missing-adapter";
    const error = await createDevice().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toMatch(/adapter "another-missing-adapter" \(from DORAFUSE_ADAPTER\)/);
  });

  it("rejects an unknown backend with Dawn's list of backends", async () => {
    const error = await createDevice({ backend: "warp-drive" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toMatch(/backend "warp-drive"/);
    expect((error as Error).message).toMatch(/vulkan/);
  });

  it("dispose() lets the Node process exit", () => {
    const script = fileURLToPath(new URL("./fixtures/dispose-exits.ts", import.meta.url));
    const child = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8", timeout: 30_000 });
    expect(child.signal, `the process did not exit by itself; stderr: ${child.stderr}`).toBeNull();
    expect(child.status, child.stderr).toBe(0);
    expect(child.stdout).toContain("c[0] = 8");
  });

  it("a disposed device rejects every call with a DeviceError", async () => {
    const device = await createDevice();
    device.dispose();
    expect(() => device.check()).toThrow(DeviceError);
    expect(() => device.check()).toThrow(/disposed/);
    await expect(device.pipelines.module("@compute @workgroup_size(1) fn main() {}", "late")).rejects.toThrow(/disposed/);
  });
});
