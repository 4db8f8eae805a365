import { describe, expect, it } from "vitest";
import { kernelPlan, loadPlan, type ExecutionPlan } from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";
import { seededRandom } from "./random.js";

const gpu = useDevice();

const SCALE = `
@group(0) @binding(0) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&x)) {
    x[id.x] = 2.0 * x[id.x] + 1.0;
  }
}
`;

/** Three dispatches of x ← 2x + 1 on a state tensor, then a copy to the output. */
function threeSteps(n: number): ExecutionPlan {
  const plan = kernelPlan({
    name: "scale",
    wgsl: SCALE,
    workgroupSize: [64, 1, 1],
    workgroups: [Math.ceil(n / 64), 1, 1],
    tensors: [{ name: "x", shape: [n], dtype: "f32", role: "state", access: "read_write" }],
  });
  const dispatch = plan.steps[0]!;
  const range = { buffer: 0, offset: 0, size: n * 4 };
  plan.buffers.push({ id: 1, size: n * 4, role: "output" });
  plan.steps = [
    { ...dispatch, label: "first" },
    { ...dispatch, label: "second" },
    { kind: "copy", src: range, dst: { ...range, buffer: 1 } },
    { ...dispatch, label: "third" },
  ];
  plan.outputs = [{ name: "before third", ...range, buffer: 1, shape: [n], dtype: "f32" }];
  return plan;
}

describe("profiling", () => {
  it("lavapipe offers timestamp-query", () => {
    // Asserted, not skipped: without the feature this file would test nothing.
    expect([...gpu.device.features]).toContain("timestamp-query");
  });

  it("gives a GPU time for every dispatch and the same results as an unprofiled run", async () => {
    const rng = seededRandom();
    // large enough that each dispatch outlasts Dawn's timestamp quantization (tens of µs):
    // with 4096 elements a dispatch could measure 0 ns
    const n = 1 << 18;
    const exe = await loadPlan(gpu.device, threeSteps(n));
    const start = rng.floats(n);
    const results: Float32Array[] = [];
    for (const profile of [false, true]) {
      await exe.writeState("x", start);
      const result = await exe.run({}, { profile });
      if (!profile) expect(result.profile).toBeUndefined();
      else {
        expect(result.profile!.steps.map((s) => [s.step, s.kernel, s.label])).toEqual([
          [0, "scale", "first"],
          [1, "scale", "second"],
          [3, "scale", "third"],
        ]);
        for (const s of result.profile!.steps) expect(s.ns, s.label).toBeGreaterThan(0);
        expect(result.profile!.totalNs).toBe(result.profile!.steps.reduce((a, s) => a + s.ns, 0));
      }
      results.push((await result.readAll())["before third"] as Float32Array);
      const x = (await exe.readState("x")) as Float32Array;
      const ref = Array.from(start, (v) => Math.fround(2 * Math.fround(2 * Math.fround(2 * v + 1) + 1) + 1));
      expect(Array.from(x), `${rng.label}, profile ${profile}`).toEqual(ref);
    }
    expect(Array.from(results[1]!)).toEqual(Array.from(results[0]!));
    exe.dispose();
  });
});
