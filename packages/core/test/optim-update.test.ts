// Optimizers traced once and run for several steps in the interpreter, against their update
// formulas written here as float64 loops: SGD (plain, momentum, Nesterov, L2), Adam, AdamW
// (decoupled decay, decay mask), with schedules and clipping inside the step; masks leave
// frozen parameters bit for bit and give them no state.
import { describe, expect, it } from "vitest";
import {
  HostTensor,
  OptimizerError,
  adam,
  adamw,
  evaluate,
  run,
  sgd,
  specsOf,
  trace,
  warmupCosineDecay,
  type Mask,
  type Optimizer,
} from "@dorafuse/core";
import { expectClose, expectEqual } from "./support/numeric.js";
import { randomArray, withSeed, type Rng } from "./support/random.js";

const H = (shape: number[], data: ArrayLike<number>): HostTensor => new HostTensor(shape, Float64Array.from(data), "f32");
const SHAPES: Record<string, number[]> = { "layer.w": [3, 4], "layer.b": [3], "emb.table": [5, 2], scale: [] };
const PATHS = Object.keys(SHAPES);
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

type Flat = Record<string, Float64Array>;
const tree = (f: Flat, frozenNull: readonly string[] = []): any => {
  const leaf = (k: string) => (frozenNull.includes(k) ? null : H(SHAPES[k]!, f[k]!));
  return { layer: { w: leaf("layer.w"), b: leaf("layer.b") }, emb: { table: leaf("emb.table") }, scale: leaf("scale") };
};
const flat = (t: any): Flat => ({ "layer.w": t.layer.w.data, "layer.b": t.layer.b.data, "emb.table": t.emb.table.data, scale: t.scale.data });
const randomFlat = (rng: Rng): Flat => Object.fromEntries(PATHS.map((k) => [k, randomArray(rng, size(SHAPES[k]!))]));

/** The optimizer's params after each of `grads.length` steps (one traced update, run repeatedly). */
function steps(opt: Optimizer, p0: Flat, grads: Flat[], nullFor: readonly string[] = []): { params: Flat[]; state: any } {
  const params0 = tree(p0);
  const s0 = evaluate((p: any) => opt.init(p), [params0] as never) as any;
  const step = trace((g: any, s: any, p: any) => opt.update(g, s, p), specsOf([tree(grads[0]!, nullFor), s0, params0]) as never);
  let [p, s] = [params0, s0];
  const out: Flat[] = [];
  for (const g of grads) {
    const r = run(step, [tree(g, nullFor), s, p] as never) as any;
    [p, s] = [r.params, r.state];
    out.push(flat(p));
  }
  return { params: out, state: s };
}

/** A reference optimizer: per-leaf state and a step function of (p, g, state, t). */
type RefStep = (p: number, g: number, st: number[], t: number, path: string) => number;

function reference(p0: Flat, grads: Flat[], slots: number, step: RefStep, trains: (path: string) => boolean = () => true): Flat[] {
  const p: Flat = Object.fromEntries(PATHS.map((k) => [k, p0[k]!.slice()]));
  const st: Record<string, number[][]> = Object.fromEntries(PATHS.map((k) => [k, Array.from(p0[k]!, () => new Array<number>(slots).fill(0))]));
  return grads.map((g, i) => {
    for (const k of PATHS) if (trains(k)) p[k] = p[k]!.map((v, j) => step(v, g[k]![j]!, st[k]![j]!, i + 1, k));
    return Object.fromEntries(PATHS.map((k) => [k, p[k]!.slice()]));
  });
}

function compare(got: Flat[], want: Flat[], tol = 1e-12): void {
  got.forEach((g, i) => PATHS.forEach((k) => expectClose(g[k]!, want[i]![k]!, tol, `step ${i + 1}, ${k}`)));
}

const adamStep = (lr: (t: number) => number, b1: number, b2: number, eps: number, wd: (path: string) => number): RefStep => (p, g, st, t, path) => {
  st[0] = b1 * st[0]! + (1 - b1) * g;
  st[1] = b2 * st[1]! + (1 - b2) * g * g;
  const u = st[0] / (1 - b1 ** t) / (Math.sqrt(st[1] / (1 - b2 ** t)) + eps);
  return p * (1 - lr(t) * wd(path)) - lr(t) * u;
};

describe("SGD", () => {
  const cases: [string, Parameters<typeof sgd>[0], RefStep, number][] = [
    ["plain", { lr: 0.1 }, (p, g) => p - 0.1 * g, 0],
    ["with L2 weight decay", { lr: 0.05, weightDecay: 0.3 }, (p, g) => p - 0.05 * (g + 0.3 * p), 0],
    ["with momentum", { lr: 0.1, momentum: 0.9 }, (p, g, st) => p - 0.1 * (st[0] = 0.9 * st[0]! + g), 1],
    [
      "with Nesterov momentum and L2",
      { lr: 0.02, momentum: 0.8, nesterov: true, weightDecay: 0.1 },
      (p, g, st) => {
        const gd = g + 0.1 * p;
        st[0] = 0.8 * st[0]! + gd;
        return p - 0.02 * (gd + 0.8 * st[0]);
      },
      1,
    ],
  ];
  for (const [name, opts, ref, slots] of cases) {
    it(`${name}: six steps match the formula`, () =>
      withSeed((rng) => {
        const p0 = randomFlat(rng);
        const grads = Array.from({ length: 6 }, () => randomFlat(rng));
        const { params, state } = steps(sgd(opts), p0, grads);
        compare(params, reference(p0, grads, slots, ref));
        expect(state.count.item()).toBe(6);
        expect(Object.keys(state).sort()).toEqual(slots ? ["count", "momentum"] : ["count"]);
      }));
  }
});

describe("Adam and AdamW", () => {
  it("Adam: bias-corrected moments, six steps", () =>
    withSeed((rng) => {
      const p0 = randomFlat(rng);
      const grads = Array.from({ length: 6 }, () => randomFlat(rng));
      const { params, state } = steps(adam({ lr: 0.01, beta1: 0.8, beta2: 0.95, eps: 1e-6 }), p0, grads);
      compare(params, reference(p0, grads, 2, adamStep(() => 0.01, 0.8, 0.95, 1e-6, () => 0)));
      expect(state.mu.layer.w.shape).toEqual([3, 4]);
      expect(state.nu.scale.shape).toEqual([]);
    }));

  it("AdamW: decoupled weight decay on the leaves the decay mask picks, with a warm-up cosine schedule", () =>
    withSeed((rng) => {
      const p0 = randomFlat(rng);
      const grads = Array.from({ length: 8 }, () => randomFlat(rng));
      const lr = warmupCosineDecay({ peak: 0.02, warmupSteps: 3, decaySteps: 7, end: 0.002 });
      const lrRef = (t: number): number => {
        const k = t - 1; // the schedule reads the count of updates made before this one
        if (k < 3) return (0.02 * k) / 3;
        const c = Math.min(k - 3, 4);
        return 0.002 + (0.02 - 0.002) * 0.5 * (1 + Math.cos((Math.PI * c) / 4));
      };
      const decayMask: Mask = { layer: { w: true }, emb: true };
      const { params } = steps(adamw({ lr, weightDecay: 0.1, decayMask }), p0, grads);
      const decays = (path: string): number => (path === "layer.w" || path === "emb.table" ? 0.1 : 0);
      compare(params, reference(p0, grads, 2, adamStep(lrRef, 0.9, 0.999, 1e-8, decays)));
      // a predicate of the path selects the same leaves
      const { params: viaPath } = steps(adamw({ lr, weightDecay: 0.1, decayMask: (p) => p === "layer.w" || p.startsWith("emb.") }), p0, grads);
      compare(viaPath, params, 0);
    }));

  it("AdamW with clipping: gradients scaled to the global norm before the moments", () =>
    withSeed((rng) => {
      const p0 = randomFlat(rng);
      const grads = Array.from({ length: 4 }, () => randomFlat(rng));
      const { params } = steps(adamw({ lr: 0.01, weightDecay: 0.05, clipNorm: 0.5 }), p0, grads);
      const clipped = grads.map((g) => {
        const norm = Math.sqrt(PATHS.reduce((s, k) => s + g[k]!.reduce((a, v) => a + v * v, 0), 0));
        const f = norm > 0.5 ? 0.5 / norm : 1;
        return Object.fromEntries(PATHS.map((k) => [k, g[k]!.map((v) => v * f)]));
      });
      expect(Math.sqrt(PATHS.reduce((s, k) => s + grads[0]![k]!.reduce((a, v) => a + v * v, 0), 0))).toBeGreaterThan(0.5);
      compare(params, reference(p0, clipped, 2, adamStep(() => 0.01, 0.9, 0.999, 1e-8, () => 0.05)));
    }));
});

describe("masks", () => {
  const mask: Mask = { layer: { w: true }, scale: true };
  const trains = (k: string): boolean => k === "layer.w" || k === "scale";

  for (const nullGrads of [false, true]) {
    it(`only the trainable sub-tree moves; frozen leaves keep their bits and get no state (${nullGrads ? "null" : "full"} gradients for them)`, () =>
      withSeed((rng) => {
        const p0 = randomFlat(rng);
        const grads = Array.from({ length: 3 }, () => randomFlat(rng));
        const frozen = PATHS.filter((k) => !trains(k));
        for (const [opt, ref, slots] of [
          [adamw({ lr: 0.01, mask, clipNorm: 1 }), null, 2],
          [sgd({ lr: 0.1, momentum: 0.5, mask }), (p: number, g: number, st: number[]) => p - 0.1 * (st[0] = 0.5 * st[0]! + g), 1],
        ] as const) {
          const { params, state } = steps(opt, p0, grads, nullGrads ? frozen : []);
          for (const k of frozen) expectEqual(params[2]![k]!, p0[k]!, `${opt.name}: ${k}`);
          expect(params[2]!["layer.w"]).not.toEqual(p0["layer.w"]);
          if (ref) compare(params, reference(p0, grads, slots, ref, trains));
          for (const slot of opt.name === "sgd" ? ["momentum"] : ["mu", "nu"]) {
            expect(state[slot].layer.b, `${slot} of layer.b`).toBeNull();
            expect(state[slot].emb.table).toBeNull();
            expect(state[slot].layer.w.shape).toEqual([3, 4]);
          }
        }
      }));
  }

  it("clipping measures only the trainable gradients", () =>
    withSeed((rng) => {
      const p0 = randomFlat(rng);
      const grads = [randomFlat(rng)];
      grads[0]!["emb.table"] = grads[0]!["emb.table"]!.map((v) => v * 1000);
      const { params } = steps(sgd({ lr: 1, mask, clipNorm: 1e6 }), p0, grads);
      compare(params, reference(p0, grads, 0, (p, g) => p - g, trains));
    }));
});

describe("optimizer errors", () => {
  const p = tree({ "layer.w": new Float64Array(12), "layer.b": new Float64Array(3), "emb.table": new Float64Array(10), scale: new Float64Array(1) });

  it("rejects bad options", () => {
    expect(() => sgd({ lr: 0.1, nesterov: true })).toThrow(OptimizerError);
    expect(() => sgd({ lr: 0.1, nesterov: true })).toThrow("sgd: nesterov needs momentum > 0");
    expect(() => adam({ lr: 0.1, beta1: 1 })).toThrow("adam: beta1 must be in [0, 1), found 1");
    expect(() => adamw({ lr: NaN })).toThrow("adamw: lr must be a finite number or a schedule, found NaN");
    expect(() => sgd({ lr: 0.1, clipNorm: 0 })).toThrow("sgd: clipNorm must be positive, found 0");
  });

  it("names a gradient tree or state that does not fit the parameters", () => {
    const opt = adam({ lr: 0.1 });
    const s = evaluate((p: any) => opt.init(p), [p] as never) as any;
    expect(() => evaluate((p: any, s: any, g: any) => opt.update({ layer: g }, s, p).params, [p, s, p.layer] as never)).toThrow("adam.update: grads have 2 leaves (tensors or nulls), params have 4");
    const wrong = { ...p, scale: H([2], [1, 2]) };
    expect(() => evaluate((p: any, s: any, g: any) => opt.update(g, s, p).params, [p, s, wrong] as never)).toThrow("adam.update: grad of scale is f32[2], the parameter is f32[]");
    const masked = adam({ lr: 0.1, mask: { layer: true } });
    const sm = evaluate((p: any) => masked.init(p), [p] as never) as any;
    expect(() => evaluate((p: any, s: any) => opt.update(p, s, p).params, [p, sm] as never)).toThrow("adam.update: state.mu has no entry for emb.table: init with the same mask as update");
  });
});
