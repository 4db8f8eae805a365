// The fused DoRA kernels (one forward kernel or two, two backward kernels) against the
// float64 interpreter running the composite doraLinear.apply traces: y and the gradients for
// A, B, m and x, on odd sizes (in / out 1, 7, 33, 130; rank 1, 3, 16; batch 1), both
// schedules, both detach modes, with and without dropout (a fixed key per case), with and
// without bias, x with two leading axes.
import { describe, expect, it } from "vitest";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectOutputs, runAgainstReference, type DoraCase } from "./support/dora.js";

const gpu = useDevice();

// Each case compiles four kernels, which lavapipe's JIT takes seconds each to build (much more
// on a loaded machine): the table covers every size, rank, mode and schedule without taking the
// full product of them.
const CASES: (DoraCase & { schedule: "single" | "split"; smem?: number })[] = [
  { lead: [1], inDim: 1, out: 1, rank: 1, schedule: "single", detach: false },
  { lead: [2], inDim: 7, out: 1, rank: 3, schedule: "split", detach: false, dropout: 0.5 },
  { lead: [1], inDim: 1, out: 7, rank: 3, schedule: "single", bias: false },
  { lead: [3], inDim: 33, out: 7, rank: 16, schedule: "split", dropout: 0.25 },
  { lead: [1], inDim: 7, out: 33, rank: 1, schedule: "single", dropout: 0.5, detach: false },
  { lead: [2, 3], inDim: 33, out: 130, rank: 3, schedule: "split", detach: false, bias: false },
  { lead: [4], inDim: 130, out: 33, rank: 16, schedule: "single", detach: false, dropout: 0.2 },
  { lead: [70], inDim: 130, out: 7, rank: 1, schedule: "split", bias: false },
  // rank 64: the split kernel's tiles shrink so its compose fits the workgroup memory
  { lead: [40], inDim: 7, out: 40, rank: 64, schedule: "split", detach: false },
  // planned for 4 KiB of workgroup memory: (c⊙B)ᵀ·B (40 × 40) is staged 8 columns at a time
  { lead: [5], inDim: 30, out: 21, rank: 40, schedule: "single", detach: false, smem: 4096 },
];

const describeCase = (c: DoraCase & { schedule: string; smem?: number }) =>
  `x [${c.lead.join(",")},${c.inDim}], out ${c.out}, rank ${c.rank}: ${c.schedule} schedule, norm ${c.detach === false ? "differentiated" : "detached"}, ${c.dropout ? `dropout ${c.dropout}` : "no dropout"}${c.bias === false ? ", no bias" : ""}${c.smem ? `, planned for ${c.smem / 1024} KiB` : ""}`;

describe("fused DoRA kernels match the float64 interpreter", () => {
  for (const c of CASES) {
    it(describeCase(c), () =>
      withSeed(async (rng) => {
        const target = c.smem ? { ...gpu.target, limits: { ...gpu.target.limits, maxComputeWorkgroupStorageSize: c.smem } } : gpu.target;
        const { lowered, got, want, detached } = await runAgainstReference(gpu.device, target, rng, c, c.schedule);
        if (c.smem) expect(lowered.plan.kernels.map((k) => k.wgsl).join()).toMatch(/for \(var j0 = 0u; j0 < 40u; j0 \+= 8u\)/);
        expectOutputs(got, want, detached, 3e-5, describeCase(c));
      }), 600_000);
  }
});
