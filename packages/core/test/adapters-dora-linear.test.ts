// doraLinear in the interpreter: PEFT parity (output and dm, dA, dB, dx against DESIGN.md's
// formulas as float64 loops), both detach modes against finite differences, dropout with a
// fixed key, odd sizes, a fresh adapter reproducing the base layer bit for bit, merging, a
// zero row of W, rsLora's scale, and the errors.
import { describe, expect, it } from "vitest";
import {
  AdapterError,
  DORA_NORM_EPS,
  HostTensor,
  adapterScale,
  doraLinear,
  dropout,
  evaluate,
  mergeDora,
  nn,
  ones,
  randomKey,
  splitKey,
  valueAndGrad,
  type AdapterOptions,
  type Tensor,
} from "@dorafuse/core";
import { direction, doraForward, doraGrads, matmul, rowNorms, type DoraInputs } from "./adapters-peft-reference.js";
import { expectClose, expectEqual, finiteDiff, dot } from "./support/numeric.js";
import { randomArray, withSeed, type Rng } from "./support/random.js";

type Wide = Tensor<number[], "f32">;
const H = (shape: number[], data: ArrayLike<number>): HostTensor => new HostTensor(shape, Float64Array.from(data), "f32");

interface Case {
  inDim: number;
  out: number;
  rank: number;
  n: number;
}

/**
 * Random W, A, B (nonzero: a trained adapter), m > 0, x, bias. B is redrawn until every row
 * of V = W + s·B·A has norm ≥ 0.2: the factored norm subtracts terms of size ‖W‖² to get ‖V‖²,
 * so a row the adapter nearly cancels is ill-conditioned in any precision (rows of zero norm
 * have their own test below).
 */
function randomInputs(rng: Rng, c: Case, s: number, bias = true): DoraInputs {
  const d: DoraInputs = {
    W: randomArray(rng, c.out * c.inDim, { minAbs: 0.1 }),
    A: randomArray(rng, c.rank * c.inDim),
    B: randomArray(rng, c.out * c.rank),
    m: randomArray(rng, c.out, { lo: 0.5, hi: 2 }),
    x: randomArray(rng, c.n * c.inDim),
    bias: bias ? randomArray(rng, c.out) : undefined,
    out: c.out,
    inDim: c.inDim,
    rank: c.rank,
    n: c.n,
    s,
    eps: DORA_NORM_EPS,
  };
  for (let tries = 0; Math.min(...rowNorms(direction(d), c.out, c.inDim)) < 0.2; tries++) {
    if (tries > 1000) throw new Error("randomInputs: could not draw a well-conditioned V");
    d.B.set(randomArray(rng, c.out * c.rank));
  }
  return d;
}

/**
 * Compares a gradient whose terms may cancel (the norm's term against the rest) relative to
 * the larger of its own norm and `scale`'s — the detached gradient, the size of those terms.
 */
function expectGrad(out: Float64Array, ref: Float64Array, scale: Float64Array, tol: number, what: string): void {
  const norm = (v: Float64Array): number => Math.hypot(...v);
  const err = Math.hypot(...out.map((v, i) => v - ref[i]!));
  if (!(err <= tol * Math.max(norm(ref), norm(scale)))) expectClose(out, ref, tol, what);
}

const paramsOf = (d: DoraInputs): Record<string, HostTensor> => ({
  w: H([d.out, d.inDim], d.W),
  loraA: H([d.rank, d.inDim], d.A),
  loraB: H([d.out, d.rank], d.B),
  m: H([d.out], d.m),
  ...(d.bias ? { b: H([d.out], d.bias) } : {}),
});

/** The dropout multipliers the layer draws with `key` for x of `shape`: dropout of ones. */
function dropMask(key: HostTensor, shape: number[], rate: number): Float64Array {
  return evaluate((k: any) => dropout(k, ones(shape), rate), [key] as never).data as Float64Array;
}

/** The layer's output and its gradients (m, A, B, x) for ⟨gy, y⟩, in float64. */
function library(d: DoraInputs, opts: AdapterOptions, gy: Float64Array, key?: HostTensor) {
  const p = paramsOf(d);
  const x = H([d.n, d.inDim], d.x);
  const run = key ? (k: any) => ({ key: k }) : () => ({});
  const y = evaluate((p: any, x: any, k: any) => doraLinear.apply(p, x, opts, run(k)), [p, x, key ?? randomKey(0)] as never) as unknown as HostTensor;
  const loss = (p: any, x: Wide, gy: Wide, k: any): Tensor => (doraLinear.apply(p, x as never, opts, run(k)) as Wide).mul(gy).sum();
  const [gp, gx] = evaluate(
    (p: any, x: any, gy: any, k: any) => valueAndGrad(loss, { argnums: [0, 1] })(p, x, gy, k)[1],
    [p, x, H([d.n, d.out], gy), key ?? randomKey(0)] as never,
  ) as unknown as [Record<string, HostTensor>, HostTensor];
  return { y: y.data, dm: gp.m!.data, dA: gp.loraA!.data, dB: gp.loraB!.data, dx: gx.data };
}

const ODD: Case[] = [
  { inDim: 1, out: 1, rank: 1, n: 1 },
  { inDim: 7, out: 1, rank: 3, n: 2 },
  { inDim: 1, out: 7, rank: 3, n: 1 },
  { inDim: 33, out: 7, rank: 16, n: 3 },
  { inDim: 7, out: 33, rank: 1, n: 1 },
  { inDim: 33, out: 33, rank: 3, n: 2 },
  { inDim: 1, out: 33, rank: 16, n: 4 },
];

describe("doraLinear matches PEFT's formulas", () => {
  for (const detach of [true, false]) {
    for (const c of ODD) {
      it(`in ${c.inDim}, out ${c.out}, rank ${c.rank}, batch ${c.n}, ${detach ? "detached" : "differentiated"} norm`, () =>
        withSeed((rng) => {
          const opts = { rank: c.rank, alpha: 2 * c.rank + 1, detachNorm: detach };
          const d = randomInputs(rng, c, adapterScale(opts), c.out !== 7);
          const gy = randomArray(rng, c.n * c.out);
          const lib = library(d, opts, gy);
          const ref = doraGrads(d, gy, detach);
          const scale = doraGrads(d, gy, true);
          expectClose(lib.y, doraForward(d).y, 1e-12, "y");
          for (const k of ["dm", "dA", "dB", "dx"] as const) expectGrad(lib[k], ref[k], scale[k], 1e-12, k);
        }));
    }
  }

  for (const detach of [true, false]) {
    it(`with dropout (fixed key), ${detach ? "detached" : "differentiated"} norm`, () =>
      withSeed((rng) => {
        const c = { inDim: 7, out: 5, rank: 3, n: 4 };
        const opts = { rank: 3, alpha: 6, dropout: 0.5, detachNorm: detach };
        const key = randomKey(rng.int(0, 1e6));
        const drop = dropMask(key, [c.n, c.inDim], 0.5);
        expect(drop.some((v) => v === 0) && drop.some((v) => v === 2)).toBe(true);
        const d = { ...randomInputs(rng, c, adapterScale(opts)), drop };
        const gy = randomArray(rng, c.n * c.out);
        const lib = library(d, opts, gy, key);
        const ref = doraGrads(d, gy, detach);
        const scale = doraGrads(d, gy, true);
        expectClose(lib.y, doraForward(d).y, 1e-12, "y");
        for (const k of ["dm", "dA", "dB", "dx"] as const) expectGrad(lib[k], ref[k], scale[k], 1e-12, k);
      }));
  }

  it("keeps leading batch axes: x [2, 3, in]", () =>
    withSeed((rng) => {
      const opts = { rank: 2, alpha: 3 };
      const d = randomInputs(rng, { inDim: 5, out: 4, rank: 2, n: 6 }, adapterScale(opts));
      const y = evaluate((p: any, x: any) => doraLinear.apply(p, x, opts), [paramsOf(d), H([2, 3, 5], d.x)] as never) as unknown as HostTensor;
      expect(y.shape).toEqual([2, 3, 4]);
      expectClose(y.data, doraForward(d).y, 1e-12, "y");
    }));

  it("uses alpha / √r with rsLora", () =>
    withSeed((rng) => {
      const opts = { rank: 4, alpha: 3, rsLora: true };
      expect(adapterScale(opts)).toBe(1.5);
      expect(adapterScale({ rank: 4, alpha: 3 })).toBe(0.75);
      const c = { inDim: 6, out: 3, rank: 4, n: 2 };
      const d = randomInputs(rng, c, 1.5);
      const gy = randomArray(rng, c.n * c.out);
      const lib = library(d, opts, gy);
      const ref = doraGrads(d, gy, true);
      expectClose(lib.y, doraForward(d).y, 1e-12, "y");
      expectClose(lib.dB, ref.dB, 1e-12, "dB");
      expect(Math.abs(lib.y[0]! - doraForward({ ...d, s: 0.75 }).y[0]!)).toBeGreaterThan(1e-6);
    }));
});

describe("doraLinear gradients match central finite differences", () => {
  it("with the norm differentiated: of the layer's own forward", () =>
    withSeed((rng) => {
      const c = { inDim: 5, out: 4, rank: 3, n: 3 };
      const opts = { rank: 3, alpha: 4, detachNorm: false };
      const d = randomInputs(rng, c, adapterScale(opts));
      const gy = randomArray(rng, c.n * c.out);
      const lib = library(d, opts, gy);
      const f = (xs: Float64Array[]): number =>
        dot(evaluate((p: any, x: any) => doraLinear.apply(p, x, opts), [paramsOf({ ...d, A: xs[0]!, B: xs[1]!, m: xs[2]! }), H([c.n, c.inDim], xs[3]!)] as never).data as Float64Array, gy);
      const at = [d.A, d.B, d.m, d.x];
      expectClose(lib.dA, finiteDiff(f, at, 0), 1e-6, "dA");
      expectClose(lib.dB, finiteDiff(f, at, 1), 1e-6, "dB");
      expectClose(lib.dm, finiteDiff(f, at, 2), 1e-6, "dm");
      expectClose(lib.dx, finiteDiff(f, at, 3), 1e-6, "dx");
    }));

  for (const rate of [0, 0.3]) {
    it(`with the norm detached: of the forward with n held constant${rate ? ", with dropout" : ""}`, () =>
      withSeed((rng) => {
        const c = { inDim: 6, out: 3, rank: 2, n: 2 };
        const opts = { rank: 2, alpha: 5, dropout: rate };
        const key = randomKey(rng.int(0, 1e6));
        const d = { ...randomInputs(rng, c, adapterScale(opts)), drop: rate ? dropMask(key, [c.n, c.inDim], rate) : undefined };
        const gy = randomArray(rng, c.n * c.out);
        const lib = library(d, opts, gy, rate ? key : undefined);
        const n0 = doraForward(d).n;
        const f = (xs: Float64Array[]): number => dot(doraForward({ ...d, A: xs[0]!, B: xs[1]!, m: xs[2]!, x: xs[3]! }, n0).y, gy);
        const at = [d.A, d.B, d.m, d.x];
        expectClose(lib.dA, finiteDiff(f, at, 0), 1e-6, "dA");
        expectClose(lib.dB, finiteDiff(f, at, 1), 1e-6, "dB");
        expectClose(lib.dm, finiteDiff(f, at, 2), 1e-6, "dm");
        expectClose(lib.dx, finiteDiff(f, at, 3), 1e-6, "dx");
        // and the detached gradient is not the full one
        expect(Math.abs(lib.dA[0]! - doraGrads(d, gy, false).dA[0]!)).toBeGreaterThan(1e-9);
      }));
  }
});

describe("doraLinear initialisation, merging and edge cases", () => {
  for (const mode of ["f64", "f32"] as const) {
    it(`a fresh adapter reproduces the base layer bit for bit (${mode}), with and without dropout`, () =>
      withSeed((rng) => {
        const opts = { rank: 3, alpha: 7, dropout: 0.25 };
        const key = randomKey(rng.int(0, 1e6));
        const x = H([3, 9], randomArray(rng, 27));
        const both = evaluate(
          (k: any, x: any) => {
            const [kb, ka, kd] = splitKey(k, 3);
            const base = nn.linear.init(kb, { inDim: 9, outDim: 5 });
            const p = doraLinear.wrap(ka, base, opts);
            return { base: nn.linear.apply(base, x), dora: doraLinear.apply(p, x, opts, { key: kd }), eval: doraLinear.apply(p, x, opts, { deterministic: true }) };
          },
          [key, x] as never,
          { mode },
        ) as unknown as Record<string, HostTensor>;
        expectEqual(both.dora!.data, both.base!.data, "with dropout");
        expectEqual(both.eval!.data, both.base!.data, "deterministic");
      }));
  }

  it("initialises A Kaiming-uniform (±1/√in), B zero, m the row norms of W", () =>
    withSeed((rng) => {
      const p = evaluate((k: any) => doraLinear.init(k, { inDim: 16, outDim: 6, rank: 4, alpha: 8 }), [randomKey(rng.int(0, 1e6))] as never) as unknown as Record<string, HostTensor>;
      const A = p.loraA!.data;
      expect(p.loraA!.shape).toEqual([4, 16]);
      expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(0.25);
      expect(Math.max(...A.map(Math.abs))).toBeGreaterThan(0.15);
      expect(new Set(A).size).toBe(A.length);
      expectEqual(p.loraB!.data, new Float64Array(24), "B");
      const W = p.w!.data;
      const norms = Array.from({ length: 6 }, (_, o) => Math.hypot(...W.slice(o * 16, o * 16 + 16)));
      expectClose(p.m!.data, norms, 1e-10, "m (PEFT's row norms)");
      expectClose(p.m!.data, norms.map((v) => Math.sqrt(v * v + DORA_NORM_EPS)), 1e-15, "m (guarded as the forward's norm)");
    }));

  it("merged weights g ⊙ (W + s·B·A) reproduce the unmerged layer", () =>
    withSeed((rng) => {
      const c = { inDim: 7, out: 5, rank: 3, n: 4 };
      for (const detachNorm of [true, false]) {
        const opts = { rank: 3, alpha: 2, detachNorm };
        const d = randomInputs(rng, c, adapterScale(opts));
        const res = evaluate(
          (p: any, x: any) => ({ merged: mergeDora(p, opts), y: doraLinear.apply(p, x, opts), ym: nn.linear.apply(mergeDora(p, opts) as never, x) }),
          [paramsOf(d), H([c.n, c.inDim], d.x)] as never,
        ) as unknown as { merged: Record<string, HostTensor>; y: HostTensor; ym: HostTensor };
        expectClose(res.ym.data, res.y.data, 1e-12, "merged output");
        const f = doraForward(d);
        const BA = matmul(d.B, d.A, c.out, c.rank, c.inDim);
        expectClose(res.merged.w!.data, d.W.map((w, k) => f.g[Math.floor(k / c.inDim)]! * (w + d.s * BA[k]!)), 1e-12, "W'");
        expectEqual(res.merged.b!.data, d.bias!, "bias");
      }
    }));

  it("a zero row in W gives finite outputs and gradients, fresh or trained, in both modes", () =>
    withSeed((rng) => {
      const c = { inDim: 5, out: 4, rank: 2, n: 3 };
      for (const fresh of [true, false]) {
        for (const detachNorm of [true, false]) {
          const opts = { rank: 2, alpha: 2, detachNorm };
          const d = randomInputs(rng, c, 1);
          const W = d.W.map((w, k) => (k < c.inDim ? 0 : w));
          const B = fresh ? new Float64Array(c.out * c.rank) : d.B;
          const m = evaluate((k: any, w: any) => doraLinear.wrap(k, { w } as never, opts).m, [randomKey(1), H([c.out, c.inDim], W)] as never) as unknown as HostTensor;
          expect(m.data[0]).toBeCloseTo(1e-6, 12);
          const lib = library({ ...d, W, B, m: fresh ? m.data : d.m }, opts, randomArray(rng, c.n * c.out));
          for (const [k, v] of Object.entries(lib)) expect(v.every(Number.isFinite), `${k} finite (fresh ${fresh}, detach ${detachNorm})`).toBe(true);
          if (fresh) expect(Array.from({ length: c.n }, (_, i) => lib.y[i * c.out]! - d.bias![0]!)).toEqual(new Array(c.n).fill(0));
        }
      }
    }));

  it("composes in float32 to float32 accuracy", () =>
    withSeed((rng) => {
      const c = { inDim: 33, out: 17, rank: 8, n: 5 };
      const opts = { rank: 8, alpha: 16 };
      const d = randomInputs(rng, c, adapterScale(opts));
      const y = evaluate((p: any, x: any) => doraLinear.apply(p, x, opts), [paramsOf(d), H([c.n, c.inDim], d.x)] as never, { mode: "f32" }) as unknown as HostTensor;
      expectClose(y.data, doraForward(d).y, 1e-5, "y (f32)");
    }));
});

describe("doraLinear errors", () => {
  const p = (rank: number) => ({ w: H([3, 4], new Float64Array(12)), loraA: H([rank, 4], new Float64Array(4 * rank)), loraB: H([3, rank], new Float64Array(3 * rank)), m: H([3], [1, 1, 1]) });
  const x = H([2, 4], new Float64Array(8));
  const apply = (params: unknown, opts: AdapterOptions, run = {}) => () => evaluate((p: any, x: any) => doraLinear.apply(p, x, opts, run), [params, x] as never);

  it("names a rank that disagrees with the factors", () => {
    expect(apply(p(2), { rank: 3, alpha: 1 })).toThrow(AdapterError);
    expect(apply(p(2), { rank: 3, alpha: 1 })).toThrow("doraLinear.apply: loraA must be [3,4] (rank, in), found [2,4]");
  });

  it("refuses dropout without a key unless deterministic", () => {
    expect(apply(p(2), { rank: 2, alpha: 1, dropout: 0.1 })).toThrow("doraLinear.apply: dropout 0.1 needs a key");
    expect(apply(p(2), { rank: 2, alpha: 1, dropout: 0.1 }, { deterministic: true })).not.toThrow();
  });

  it("rejects bad options and a magnitude of the wrong size", () => {
    expect(apply(p(2), { rank: 0, alpha: 1 })).toThrow("rank must be a positive integer, found 0");
    expect(apply(p(2), { rank: 2, alpha: 1, dropout: 1 })).toThrow("dropout must be in [0, 1), found 1");
    expect(apply({ ...p(2), m: H([4], [1, 1, 1, 1]) }, { rank: 2, alpha: 1 })).toThrow("m must be [3] (one magnitude per output row), found [4]");
  });
});
