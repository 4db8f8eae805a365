import { describe, expect, it } from "vitest";
import { CompileError, kernelPlan, loadPlan, matmulPlan, ShaderError } from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";

const gpu = useDevice();

const BROKEN = `@group(0) @binding(0) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(1)
fn main() {
  let scale: f32 = 2u;
  out[0] = scale;
}
`;

describe("pipelines", () => {
  it("throws a ShaderError quoting the WGSL line and Dawn's message", async () => {
    const error = await gpu.device.pipelines.module(BROKEN, "broken").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShaderError);
    expect(error).toBeInstanceOf(CompileError);
    const e = error as ShaderError;
    expect(e.message).toContain('WGSL of kernel "broken" does not compile');
    // Dawn (Tint) names the mismatch; the runtime adds the position, the line and a caret.
    expect(e.message).toMatch(/5:\d+ error: .*'f32'.*'u32'/);
    expect(e.message).toContain("    5 |   let scale: f32 = 2u;");
    expect(e.message).toMatch(/\n {6}\| +\^/);
    expect(e.messages.find((m) => m.type === "error")?.line).toBe(5);
    // The failure is not cached: the next attempt compiles (and fails) again.
    await expect(gpu.device.pipelines.module(BROKEN, "broken again")).rejects.toThrow(/kernel "broken again"/);
  });

  it("loading a plan with broken WGSL names the kernel", async () => {
    const plan = kernelPlan({
      name: "brokenKernel",
      wgsl: BROKEN,
      workgroupSize: [1, 1, 1],
      workgroups: [1, 1, 1],
      tensors: [{ name: "out", shape: [1], dtype: "f32", role: "output", access: "read_write" }],
    });
    await expect(loadPlan(gpu.device, plan)).rejects.toThrow(/WGSL of kernel "brokenKernel" does not compile/);
  });

  it("compiles each WGSL source once", async () => {
    const cache = gpu.device.pipelines;
    const first = await loadPlan(gpu.device, matmulPlan(5, 6, 7));
    const before = cache.stats;
    // Another size: the same WGSL (sizes are a uniform), so neither a module nor a pipeline is made.
    const second = await loadPlan(gpu.device, matmulPlan(9, 3, 2));
    const after = cache.stats;
    expect(after.modules).toBe(before.modules);
    expect(after.pipelines).toBe(before.pipelines);
    expect(after.hits).toBeGreaterThan(before.hits);
    first.dispose();
    second.dispose();
  });
});
