import { describe, expect, it } from "vitest";
import { f16ToF32, f32ToF16, kernelPlan, run } from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";
import { seededRandom } from "./random.js";

const gpu = useDevice();

describe("half precision on the host", () => {
  it("every non-NaN half survives f16 → f32 → f16", () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0);
    expect(Array.from(f32ToF16(f16ToF32(all)))).toEqual(Array.from(all));
  });

  it("f32ToF16 rounds as the GPU converts, subnormals and overflow included", async () => {
    const rng = seededRandom();
    const n = 4096;
    // Magnitudes from 2^-30 (below the smallest half) to 2^17 (past the largest), both signs.
    const x = Float32Array.from({ length: n }, () => (rng.next() < 0.5 ? -1 : 1) * 2 ** (rng.next() * 47 - 30));
    const plan = kernelPlan({
      name: "toHalf",
      wgsl: `enable f16;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f16>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&x)) {
    y[id.x] = f16(clamp(x[id.x], -65504.0, 65504.0));
  }
}`,
      workgroupSize: [64, 1, 1],
      workgroups: [n / 64, 1, 1],
      tensors: [
        { name: "x", shape: [n], dtype: "f32", role: "input", access: "read" },
        { name: "y", shape: [n], dtype: "f16", role: "output", access: "read_write" },
      ],
    });
    const { y } = (await run(gpu.device, plan, { x })) as { y: Uint16Array };
    // WGSL's f16() of an out-of-range value is undefined, hence the clamp on both sides. For
    // values between two halves WGSL allows either; lavapipe, like GPUs generally, rounds to
    // nearest even, which is what f32ToF16 does and what this asserts.
    const host = f32ToF16(x.map((v) => Math.min(65504, Math.max(-65504, v))));
    const mismatches = Array.from(y).flatMap((h, i) => (h === host[i] ? [] : [`x=${x[i]} gpu=${h} host=${host[i]}`]));
    expect(mismatches.slice(0, 5), rng.label).toEqual([]);
  });
});
