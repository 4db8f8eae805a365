// Learning-rate schedules evaluated as tensor ops of a traced step counter, against optax's
// definitions written here in float64; clipping by global norm against the formula.
import { describe, expect, it } from "vitest";
import {
  HostTensor,
  OptimizerError,
  clipByGlobalNorm,
  constantSchedule,
  cosineDecay,
  evaluate,
  globalNorm,
  linearSchedule,
  linearWarmup,
  run,
  spec,
  trace,
  warmupCosineDecay,
  type Schedule,
} from "@dorafuse/core";
import { expectClose, expectEqual } from "./support/numeric.js";
import { randomArray, withSeed } from "./support/random.js";

/** The schedule's value at steps 0 … n − 1, traced once and run per step. */
function values(s: Schedule, n: number, mode: "f64" | "f32" = "f64"): number[] {
  const t = trace((step) => s(step), [spec([], "i32")]);
  return Array.from({ length: n }, (_, i) => (run(t, [new HostTensor<[], "i32">([], Float64Array.of(i), "i32")], { mode }) as HostTensor).item());
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
const steps = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("schedules follow optax", () => {
  it("constant", () => expect(values(constantSchedule(0.3), 4)).toEqual([0.3, 0.3, 0.3, 0.3]));

  it("linear from `from` to `to` over `steps`, starting at `begin`", () => {
    const ref = steps(16).map((t) => 1 + (0.1 - 1) * (clamp(t - 2, 0, 10) / 10));
    expectClose(values(linearSchedule({ from: 1, to: 0.1, steps: 10, begin: 2 }), 16), ref, 1e-15, "linear");
  });

  it("linear warm-up to the peak, then flat", () => {
    expectClose(values(linearWarmup({ peak: 0.5, warmupSteps: 4 }), 8), steps(8).map((t) => (0.5 * Math.min(t, 4)) / 4), 1e-15, "warm-up");
  });

  it("cosine decay to alpha · init, then flat", () => {
    const ref = steps(13).map((t) => 2 * (0.9 * 0.5 * (1 + Math.cos((Math.PI * Math.min(t, 9)) / 9)) + 0.1));
    expectClose(values(cosineDecay({ init: 2, decaySteps: 9, alpha: 0.1 }), 13), ref, 1e-15, "cosine");
  });

  for (const warmup of [0, 3]) {
    it(`warm-up (${warmup} steps) then cosine decay to the end value`, () => {
      const ref = steps(14).map((t) => {
        if (t < warmup) return 0.01 + ((1 - 0.01) * t) / warmup;
        const c = Math.min(t - warmup, 10 - warmup);
        return 0.05 + (1 - 0.05) * 0.5 * (1 + Math.cos((Math.PI * c) / (10 - warmup)));
      });
      const s = warmupCosineDecay({ from: 0.01, peak: 1, warmupSteps: warmup, decaySteps: 10, end: 0.05 });
      expectClose(values(s, 14), ref, 1e-15, "warm-up cosine");
      expectClose(values(s, 14, "f32"), ref, 1e-6, "warm-up cosine (f32)");
      expect(values(s, 14)[warmup]).toBeCloseTo(1, 12);
    });
  }

  it("rejects degenerate spans", () => {
    expect(() => cosineDecay({ init: 1, decaySteps: 0 })).toThrow(OptimizerError);
    expect(() => cosineDecay({ init: 1, decaySteps: 0 })).toThrow("cosineDecay: decaySteps must be a positive number, found 0");
    expect(() => warmupCosineDecay({ peak: 1, warmupSteps: 5, decaySteps: 5 })).toThrow("warmupCosineDecay: decaySteps (5) must exceed warmupSteps (5)");
    expect(() => linearWarmup({ peak: 1, warmupSteps: -1 })).toThrow("linearSchedule: steps must be a positive number, found -1");
  });
});

describe("clipping by global norm", () => {
  const H = (shape: number[], data: ArrayLike<number>): HostTensor => new HostTensor(shape, Float64Array.from(data), "f32");

  for (const [name, maxNorm] of [["above the threshold: scaled to it", 0.5], ["below the threshold: unchanged, bit for bit", 100]] as const) {
    it(name, () =>
      withSeed((rng) => {
        const g = { a: H([3, 2], randomArray(rng, 6)), b: [H([4], randomArray(rng, 4)), null], c: H([], randomArray(rng, 1)) };
        const res = evaluate((g: any) => ({ ...clipByGlobalNorm(g, maxNorm), n: globalNorm(g) }), [g] as never) as any;
        const all = [...g.a.data, ...g.b[0]!.data, ...g.c.data];
        const norm = Math.hypot(...all);
        expectClose([res.norm.item(), res.n.item()], [norm, norm], 1e-15, "norm");
        const f = norm > maxNorm ? maxNorm / norm : 1;
        const out = [...res.grads.a.data, ...res.grads.b[0].data, ...res.grads.c.data];
        if (f === 1) expectEqual(out, all, "unchanged");
        else {
          expectClose(out, all.map((v) => v * f), 1e-15, "clipped");
          expect(Math.hypot(...out)).toBeCloseTo(maxNorm, 12);
        }
        expect(res.grads.b[1]).toBeNull();
      }));
  }

  it("rejects a non-positive threshold", () => {
    expect(() => evaluate((g: any) => clipByGlobalNorm(g, 0).grads, [{ a: H([1], [1]) }] as never)).toThrow("clipByGlobalNorm: maxNorm must be positive, found 0");
  });
});
