// loraLinear in the interpreter: PEFT's formula y = x·Wᵀ + b + s·(x'·Aᵀ)·Bᵀ and its gradients
// as float64 loops, finite differences, dropout with a fixed key, odd sizes, PEFT's
// initialisation, a fresh adapter reproducing the base layer, and merging.
import { describe, expect, it } from "vitest";
import { HostTensor, adapterScale, dropout, evaluate, loraLinear, mergeLora, nn, ones, randomKey, splitKey, valueAndGrad, type AdapterOptions, type Tensor } from "@dorafuse/core";
import { loraReference, matmul, type DoraInputs } from "./adapters-peft-reference.js";
import { dot, expectClose, expectEqual, finiteDiff } from "./support/numeric.js";
import { randomArray, withSeed, type Rng } from "./support/random.js";

type Wide = Tensor<number[], "f32">;
type LoraInputs = Omit<DoraInputs, "m">;
const H = (shape: number[], data: ArrayLike<number>): HostTensor => new HostTensor(shape, Float64Array.from(data), "f32");

function randomInputs(rng: Rng, c: { inDim: number; out: number; rank: number; n: number }, s: number, bias = true): LoraInputs {
  return {
    W: randomArray(rng, c.out * c.inDim),
    A: randomArray(rng, c.rank * c.inDim),
    B: randomArray(rng, c.out * c.rank),
    x: randomArray(rng, c.n * c.inDim),
    bias: bias ? randomArray(rng, c.out) : undefined,
    ...c,
    s,
  };
}

const paramsOf = (d: LoraInputs): Record<string, HostTensor> => ({
  w: H([d.out, d.inDim], d.W),
  loraA: H([d.rank, d.inDim], d.A),
  loraB: H([d.out, d.rank], d.B),
  ...(d.bias ? { b: H([d.out], d.bias) } : {}),
});

function library(d: LoraInputs, opts: AdapterOptions, gy: Float64Array, key?: HostTensor) {
  const run = key ? (k: any) => ({ key: k }) : () => ({});
  const loss = (p: any, x: Wide, gy: Wide, k: any): Tensor => (loraLinear.apply(p, x as never, opts, run(k)) as Wide).mul(gy).sum();
  const res = evaluate(
    (p: any, x: any, gy: any, k: any) => {
      const [, [gp, gx]] = valueAndGrad(loss, { argnums: [0, 1] })(p, x, gy, k);
      return { y: loraLinear.apply(p, x, opts, run(k)), gp, gx };
    },
    [paramsOf(d), H([d.n, d.inDim], d.x), H([d.n, d.out], gy), key ?? randomKey(0)] as never,
  ) as unknown as { y: HostTensor; gp: Record<string, HostTensor>; gx: HostTensor };
  return { y: res.y.data, dA: res.gp.loraA!.data, dB: res.gp.loraB!.data, dx: res.gx.data };
}

const CASES = [
  { inDim: 1, out: 1, rank: 1, n: 1 },
  { inDim: 7, out: 33, rank: 3, n: 1 },
  { inDim: 33, out: 7, rank: 16, n: 2 },
  { inDim: 33, out: 1, rank: 1, n: 3 },
];

describe("loraLinear matches PEFT's formulas", () => {
  for (const c of CASES) {
    for (const rate of [0, 0.4]) {
      it(`in ${c.inDim}, out ${c.out}, rank ${c.rank}, batch ${c.n}${rate ? ", dropout" : ""}`, () =>
        withSeed((rng) => {
          const opts = { rank: c.rank, alpha: 3, dropout: rate, rsLora: c.rank === 16 };
          const key = randomKey(rng.int(0, 1e6));
          const drop = rate ? (evaluate((k: any) => dropout(k, ones([c.n, c.inDim]), rate), [key] as never).data as Float64Array) : undefined;
          const d = { ...randomInputs(rng, c, adapterScale(opts), c.out > 1), drop };
          const gy = randomArray(rng, c.n * c.out);
          const lib = library(d, opts, gy, rate ? key : undefined);
          const ref = loraReference(d, gy);
          for (const k of ["y", "dA", "dB", "dx"] as const) expectClose(lib[k], ref[k], 1e-12, k);
        }));
    }
  }

  it("gradients match central finite differences of the layer's forward", () =>
    withSeed((rng) => {
      const c = { inDim: 5, out: 3, rank: 2, n: 2 };
      const opts = { rank: 2, alpha: 5 };
      const d = randomInputs(rng, c, adapterScale(opts));
      const gy = randomArray(rng, c.n * c.out);
      const lib = library(d, opts, gy);
      const f = (xs: Float64Array[]): number =>
        dot(evaluate((p: any, x: any) => loraLinear.apply(p, x, opts), [paramsOf({ ...d, A: xs[0]!, B: xs[1]! }), H([c.n, c.inDim], xs[2]!)] as never).data as Float64Array, gy);
      const at = [d.A, d.B, d.x];
      expectClose(lib.dA, finiteDiff(f, at, 0), 1e-6, "dA");
      expectClose(lib.dB, finiteDiff(f, at, 1), 1e-6, "dB");
      expectClose(lib.dx, finiteDiff(f, at, 2), 1e-6, "dx");
    }));
});

describe("loraLinear initialisation and merging", () => {
  it("a fresh adapter (A Kaiming-uniform, B zero) reproduces the base layer bit for bit", () =>
    withSeed((rng) => {
      const opts = { rank: 4, alpha: 8, dropout: 0.5 };
      const res = evaluate(
        (k: any, x: any) => {
          const [kb, ka, kd] = splitKey(k, 3);
          const base = nn.linear.init(kb, { inDim: 25, outDim: 6 });
          const p = loraLinear.wrap(ka, base, opts);
          return { p, base: nn.linear.apply(base, x), lora: loraLinear.apply(p, x, opts, { key: kd }) };
        },
        [randomKey(rng.int(0, 1e6)), H([2, 25], randomArray(rng, 50))] as never,
        { mode: "f32" },
      ) as unknown as { p: Record<string, HostTensor>; base: HostTensor; lora: HostTensor };
      expectEqual(res.lora.data, res.base.data, "y");
      const A = res.p.loraA!.data;
      expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(0.2);
      expect(Math.max(...A.map(Math.abs))).toBeGreaterThan(0.15);
      expectEqual(res.p.loraB!.data, new Float64Array(24), "B");
    }));

  it("init builds the base layer and the adapter from one key", () => {
    const p = evaluate((k: any) => loraLinear.init(k, { inDim: 4, outDim: 3, rank: 2, alpha: 2, bias: false }), [randomKey(5)] as never) as unknown as Record<string, HostTensor>;
    expect(Object.keys(p).sort()).toEqual(["loraA", "loraB", "w"]);
    expect([p.w!.shape, p.loraA!.shape, p.loraB!.shape]).toEqual([[3, 4], [2, 4], [3, 2]]);
  });

  it("merged W + s·B·A reproduces the unmerged layer", () =>
    withSeed((rng) => {
      const c = { inDim: 6, out: 4, rank: 3, n: 3 };
      const opts = { rank: 3, alpha: 4 };
      const d = randomInputs(rng, c, adapterScale(opts));
      const res = evaluate(
        (p: any, x: any) => ({ merged: mergeLora(p, opts), y: loraLinear.apply(p, x, opts), ym: nn.linear.apply(loraLinear.merge(p, opts) as never, x) }),
        [paramsOf(d), H([c.n, c.inDim], d.x)] as never,
      ) as unknown as { merged: Record<string, HostTensor>; y: HostTensor; ym: HostTensor };
      expectClose(res.ym.data, res.y.data, 1e-12, "merged output");
      const BA = matmul(d.B, d.A, c.out, c.rank, c.inDim);
      expectClose(res.merged.w!.data, d.W.map((w, k) => w + d.s * BA[k]!), 1e-14, "W'");
    }));
});
