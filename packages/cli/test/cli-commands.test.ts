// The `dorafuse` command end to end, through packages/cli/bin/dorafuse.mjs as a user runs
// it: `compile` writes a module that loads and trains, `doctor` reports the adapter and its
// measurements, `explain` shows the kernels of an entry; bad arguments get the usage.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { shaped, type CompiledEvalStep, type CompiledManifest, type Device } from "@dorafuse/runtime";
import { useDevice } from "../../compiler/test/support/device.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = fileURLToPath(new URL("../bin/dorafuse.mjs", import.meta.url));
const model = join(root, "examples/aot/model.ts");
const out = join(root, "examples/aot/gen", `cli-${process.pid}-${Date.now().toString(36)}`);
const gpu = useDevice();
afterAll(() => rmSync(out, { recursive: true, force: true }));

const dorafuse = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 180_000 });

describe("dorafuse compile", () => {
  it("compiles an evaluation step into a module that loads and evaluates", async () => {
    const r = dorafuse("compile", model, "--entry", "validate", "--out", out, "--no-device");
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^compiled eval "validate" in [\d.]+ s \(@dorafuse\/compiler 0\.1\.0, graph [0-9a-f]{14}, for "webgpu-defaults"\)\n {2}\d+ kernels, \d+ dispatches per call, peak memory /);
    expect(r.stdout).toMatch(/needs maxStorageBuffersPerShaderStage \d+/);
    expect(r.stdout).toMatch(/wrote .*validate\.ts\n.*manifest\.json and \d+ WGSL files, .*initial\.safetensors/);
    const manifest = JSON.parse(readFileSync(join(out, "validate/manifest.json"), "utf8")) as CompiledManifest;
    expect(manifest.compiledFor.limits.maxStorageBuffersPerShaderStage).toBe(8);
    expect(manifest.requires.limits.maxStorageBuffersPerShaderStage).toBeLessThanOrEqual(8);
    const { load } = (await import(pathToFileURL(join(out, "validate.ts")).href)) as { load(d: Device): Promise<CompiledEvalStep> };
    const step = await load(gpu.device);
    const ids = shaped([4, 16], Int32Array.from({ length: 64 }, (_, i) => (i * 7) % 32));
    const r1 = await step.evaluate({ ids, targets: ids });
    const loss = await r1.loss;
    // the fresh model predicts about uniformly over 32 tokens
    expect(Math.abs(loss - Math.log(32))).toBeLessThan(0.5);
    expect(await (await step.evaluate({ ids, targets: ids })).loss).toBe(loss);
    step.dispose();
  }, 600_000);

  it("names the entries a module has when the one asked for is missing, and prints usage for bad arguments", () => {
    const missing = dorafuse("compile", model, "--entry", "nope", "--out", out);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/has no export "nope"; its entries are \[forward, train, validate\]/);
    const bad = dorafuse("compile", model, "--entry", "train");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/dorafuse compile: expected one module, --entry <name> and --out <dir>\n\nusage: dorafuse compile/);
    expect(existsSync(join(out, "nope.ts"))).toBe(false);
  });
});

describe("dorafuse doctor and explain", () => {
  it("doctor reports the adapter, its limits and measured bandwidth and GFLOP/s", () => {
    const r = dorafuse("doctor", "--copy-mib", "1", "--matmul", "64", "--repeats", "1", "--json");
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { adapter: { description: string }; limits: Record<string, number> };
    expect(report.adapter.description).toBe(gpu.device.adapter.description);
    expect(report.limits.maxStorageBuffersPerShaderStage).toBe(gpu.device.limits.maxStorageBuffersPerShaderStage);
    const text = dorafuse("doctor", "--copy-mib", "1", "--matmul", "64", "--repeats", "1");
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/GB\/s/);
    expect(text.stdout).toMatch(/GFLOP\/s/);
  }, 600_000);

  it("explain shows the kernels and totals of the example's forward pass", () => {
    const r = dorafuse("explain", model, "--entry", "forward", "--no-wgsl");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/== graph after passes \(\d+ nodes\) ==/);
    expect(r.stdout).toMatch(/graph\(%\d+:f32\[\d+\] "params\./);
    expect(r.stdout).toMatch(/== totals ==\nkernels: \d+\ndispatches per call: \d+/);
    expect(r.stdout).not.toMatch(/== WGSL ==/);
  }, 600_000);
});
