// Contraction groups: layers written in primitives here, which no compiler code names, fuse
// into one kernel by the general rules — the other products of the main product's K-loop,
// the low-rank contractions reading them and the epilogue — and match the interpreter.
import { describe, expect, it } from "vitest";
import { doraLinear, rmsNorm, sigmoid, spec, trace, valueAndGrad, type DoraParams, type Tensor } from "@dorafuse/core";
import { configureDora, lowerGraph } from "@dorafuse/compiler";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectBothSchedules, randomInputs } from "./support/run.js";

const gpu = useDevice();
type F = Tensor<number[], "f32">;
const T = (x: unknown) => x as F;
const kinds = (l: ReturnType<typeof lowerGraph>) => l.schedule.groups.map((g) => g.kind);
const why = (l: ReturnType<typeof lowerGraph>) => l.schedule.merges.join("\n");

describe("contraction groups", () => {
  it("RMSNorm followed by a projection is one kernel: the row statistic is a sum of the same K-loop, its scale the epilogue's", () =>
    withSeed(async (rng) => {
      const g = trace((x: F, gamma: F, w: F) => rmsNorm(x, gamma as never).matmul(T(w).mT() as never), [spec([3, 5, 96]), spec([96]), spec([40, 96])]).graph;
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(kinds(fused)).toEqual(["contraction"]);
      expect(why(fused)).toMatch(/accumulates %\d+ from the same K-loop/);
    }));

  it("a weight-normalised linear (g ⊙ V / ‖V‖_row, Salimans & Kingma) with bias is one kernel: ‖V‖² comes from the staged V tiles", () =>
    withSeed(async (rng) => {
      const layer = (x: F, v: F, gain: F, b: F) => {
        const w = T(v).mul(T(gain).div(T(v).square().sum(1).sqrt()).expandDims(1) as never);
        return T(x).matmul(w.mT() as never).add(b as never);
      };
      const g = trace(layer, [spec([12, 96]), spec([40, 96]), spec([40]), spec([40])]).graph;
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(kinds(fused)).toEqual(["contraction"]);
    }));

  it("a LoRA with a learned per-output gate is one kernel, and writes x·Aᵀ when another kernel reads it", () =>
    withSeed(async (rng) => {
      const layer = (x: F, w: F, a: F, b: F, gate: F) => {
        const xa = T(x).matmul(T(a).mT() as never);
        const y = T(x).matmul(T(w).mT() as never).add(T(xa.matmul(T(b).mT() as never)).mul(sigmoid(gate) as never).mul(0.5));
        return [y, xa.exp()];
      };
      const g = trace(layer as never, [spec([20, 96]), spec([72, 96]), spec([6, 96]), spec([72, 6]), spec([72])]).graph;
      const { fused, unfused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      // the x·Aᵀ that exp reads is written by the contraction kernel, not computed again
      expect(kinds(fused)).toEqual(["contraction", "map"]);
      expect(unfused.schedule.groups.length).toBeGreaterThan(4);
    }));

  it("a column sum over the rows the product stages joins its loop (a backward's Σ_batch gy⊙u beside gyᵀ·h) and is written", () =>
    withSeed(async (rng) => {
      const g = trace(((gy: F, h: F, u: F) => [T(gy).mT().matmul(h as never), T(gy).mul(u as never).sum(0)]) as never, [spec([96, 40]), spec([96, 6]), spec([96, 40])]).graph;
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(kinds(fused)).toEqual(["contraction"]);
    }));

  for (const detach of [true, false]) {
    it(`the DoRA layer traced as primitives, its rewrite off, is one forward kernel by the general rules (norm ${detach ? "detached" : "differentiated"})`, () =>
      withSeed(async (rng) => {
        const opts = { rank: 4, alpha: 8, detachNorm: detach };
        const layer = (x: F, w: F, a: F, b: F, m: F) => doraLinear.apply({ w, loraA: a, loraB: b, m } as unknown as DoraParams, x as never, opts) as F;
        const g = trace(layer, [spec([3, 6, 96]), spec([48, 96]), spec([4, 96]), spec([48, 4]), spec([48])]).graph;
        const before = configureDora({ enabled: false });
        try {
          const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g, { m: [1, 3] }), { target: gpu.target, tol: 1e-4 });
          expect(kinds(fused)).toEqual(["contraction"]);
          expect(fused.graph.nodes.some((n) => n.op.startsWith("dora"))).toBe(false);
          // x·Aᵀ, W·Aᵀ, A·Aᵀ and ‖W‖² from the x, W and A tiles of one loop
          expect(why(fused)).toMatch(/accumulates %\d+, %\d+, %\d+, %\d+ from the same K-loop/);
          expect(why(fused)).toMatch(/3 staged tiles/);
        } finally {
          configureDora(before);
        }
      }));

    it(`the DoRA layer's gradients by the general rules match the interpreter, no tensor of W's size besides W (norm ${detach ? "detached" : "differentiated"})`, () =>
      withSeed(async (rng) => {
        const opts = { rank: 4, alpha: 8, detachNorm: detach };
        const loss = (t: Record<string, F>, x: F, w: F, gy: F) => (doraLinear.apply({ w, ...t } as unknown as DoraParams, x as never, opts) as F).mul(gy as never).sum();
        const step = (t: never, x: never, w: never, gy: never) => {
          const [v, [gt, gx]] = valueAndGrad(loss, { argnums: [0, 1] })(t, x, w, gy);
          const g = gt as Record<string, F>;
          return [v, g.loraA, g.loraB, g.m, gx];
        };
        const before = configureDora({ enabled: false });
        try {
          const g = trace(step as never, [{ loraA: spec([4, 96]), loraB: spec([80, 4]), m: spec([80]) }, spec([72, 96]), spec([80, 96]), spec([72, 80])] as never).graph;
          const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g, { "arg0.m": [1, 3] }), { target: gpu.target, tol: 1e-4 });
          expect(fused.graph.nodes.some((n) => n.op.startsWith("dora"))).toBe(false);
          expect(kinds(fused).filter((k) => k === "contraction").length).toBeGreaterThanOrEqual(2);
          const weightSized = fused.schedule.groups.flatMap((k) => k.outputs).filter((o) => o.shape.join() === "80,96");
          expect(weightSized).toEqual([]);
        } finally {
          configureDora(before);
        }
      }));
  }
});
