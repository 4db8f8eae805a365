// DoRA and LoRA embeddings in the interpreter, against PEFT's embedding convention written as
// float64 loops: A (r, vocab), B (dim, r), the norm per embedding dimension over the
// vocabulary, A zero and B normal at init; gradients against finite differences (norm
// differentiated: the layer's own forward; detached: the forward with n held constant).
import { describe, expect, it } from "vitest";
import { DORA_NORM_EPS, HostTensor, adapterScale, doraEmbedding, evaluate, loraEmbedding, nn, randomKey, splitKey, valueAndGrad, type AdapterOptions, type Tensor } from "@dorafuse/core";
import { doraEmbeddingForward, matmul, transpose } from "./adapters-peft-reference.js";
import { dot, expectClose, expectEqual, finiteDiff } from "./support/numeric.js";
import { randomArray, randomInts, withSeed, type Rng } from "./support/random.js";

type Wide = Tensor<number[], "f32">;
const H = (shape: number[], data: ArrayLike<number>, dtype: "f32" | "i32" = "f32"): HostTensor => new HostTensor(shape, Float64Array.from(data), dtype);

interface Emb {
  table: Float64Array;
  A: Float64Array;
  B: Float64Array;
  m: Float64Array;
  ids: number[];
  vocab: number;
  dim: number;
  rank: number;
  s: number;
  eps: number;
}

/** Random inputs; B is redrawn until every norm is ≥ 0.2 (see adapters-dora-linear.test.ts). */
function randomEmb(rng: Rng, vocab: number, dim: number, rank: number, count: number, s: number): Emb {
  const e: Emb = {
    table: randomArray(rng, vocab * dim, { minAbs: 0.1 }),
    A: randomArray(rng, rank * vocab, { lo: -0.3, hi: 0.3 }),
    B: randomArray(rng, dim * rank, { lo: -0.3, hi: 0.3 }),
    m: randomArray(rng, dim, { lo: 0.5, hi: 2 }),
    // every id at least once when there is room, and repeats: the gradient sums over them
    ids: [...Array.from({ length: Math.min(vocab, count) }, (_, i) => i), ...Array.from(randomInts(rng, Math.max(0, count - vocab), 0, vocab - 1))],
    vocab,
    dim,
    rank,
    s,
    eps: DORA_NORM_EPS,
  };
  for (let tries = 0; Math.min(...doraEmbeddingForward(e).n) < 0.2; tries++) {
    if (tries > 1000) throw new Error("randomEmb: could not draw well-conditioned norms");
    e.B.set(randomArray(rng, dim * rank, { lo: -0.3, hi: 0.3 }));
  }
  return e;
}

const paramsOf = (e: Emb, m = true): Record<string, HostTensor> => ({
  table: H([e.vocab, e.dim], e.table),
  loraA: H([e.rank, e.vocab], e.A),
  loraB: H([e.dim, e.rank], e.B),
  ...(m ? { m: H([e.dim], e.m) } : {}),
});

function library(e: Emb, opts: AdapterOptions, gy: Float64Array) {
  const loss = (p: any, ids: any, gy: Wide): Tensor => (doraEmbedding.apply(p, ids, opts) as Wide).mul(gy).sum();
  const res = evaluate(
    (p: any, ids: any, gy: any) => ({ y: doraEmbedding.apply(p, ids, opts), g: valueAndGrad(loss)(p, ids, gy)[1] }),
    [paramsOf(e), H([e.ids.length], e.ids, "i32"), H([e.ids.length, e.dim], gy)] as never,
  ) as unknown as { y: HostTensor; g: Record<string, HostTensor> };
  return { y: res.y.data, dA: res.g.loraA!.data, dB: res.g.loraB!.data, dm: res.g.m!.data };
}

const CASES: [vocab: number, dim: number, rank: number, count: number][] = [
  [1, 1, 1, 1],
  [7, 33, 3, 9],
  [33, 7, 16, 40],
  [9, 4, 2, 1],
];

describe("doraEmbedding follows PEFT's DoRA embedding", () => {
  for (const [vocab, dim, rank, count] of CASES) {
    it(`vocab ${vocab}, dim ${dim}, rank ${rank}, ${count} ids: output, norm per embedding dimension`, () =>
      withSeed((rng) => {
        const opts = { rank, alpha: 2 * rank };
        const e = randomEmb(rng, vocab, dim, rank, count, adapterScale(opts));
        const lib = library(e, opts, randomArray(rng, count * dim));
        expectClose(lib.y, doraEmbeddingForward(e).y, 1e-12, "y");
      }));
  }

  for (const detachNorm of [true, false]) {
    it(`gradients match finite differences, ${detachNorm ? "detached" : "differentiated"} norm`, () =>
      withSeed((rng) => {
        const opts = { rank: 3, alpha: 5, detachNorm };
        const e = randomEmb(rng, 6, 5, 3, 10, adapterScale(opts));
        const gy = randomArray(rng, e.ids.length * e.dim);
        const lib = library(e, opts, gy);
        const n0 = doraEmbeddingForward(e).n;
        const f = (xs: Float64Array[]): number => dot(doraEmbeddingForward({ ...e, A: xs[0]!, B: xs[1]!, m: xs[2]! }, detachNorm ? n0 : undefined).y, gy);
        const at = [e.A, e.B, e.m];
        expectClose(lib.dA, finiteDiff(f, at, 0), 1e-6, "dA");
        expectClose(lib.dB, finiteDiff(f, at, 1), 1e-6, "dB");
        expectClose(lib.dm, finiteDiff(f, at, 2), 1e-6, "dm");
      }));
  }

  it("the norm is per embedding dimension over the vocabulary (not per token)", () =>
    withSeed((rng) => {
      const opts = { rank: 2, alpha: 2 };
      const e = randomEmb(rng, 5, 3, 2, 5, adapterScale(opts));
      // with m = 1 and the adapter zeroed, each column of the output over all tokens has unit norm
      const z = { ...e, A: new Float64Array(e.A.length), m: new Float64Array(3).fill(1) };
      const y = library(z, opts, new Float64Array(15)).y;
      for (let c = 0; c < 3; c++) expect(Math.hypot(...[0, 1, 2, 3, 4].map((i) => y[i * 3 + c]!))).toBeCloseTo(1, 10);
    }));

  it("a fresh adapter (A zero, B normal) reproduces the table bit for bit, and merging reproduces the layer", () =>
    withSeed((rng) => {
      const opts = { rank: 3, alpha: 6 };
      const ids = H([2, 4], randomInts(rng, 8, 0, 10), "i32");
      const res = evaluate(
        (k: any, ids: any) => {
          const [kt, ka] = splitKey(k, 2);
          const base = nn.embedding.init(kt, { vocab: 11, dim: 5, std: 1 });
          const p = doraEmbedding.wrap(ka, base, opts);
          return { p, base: nn.embedding.apply(base, ids), y: doraEmbedding.apply(p, ids, opts) };
        },
        [randomKey(rng.int(0, 1e6)), ids] as never,
        { mode: "f32" },
      ) as unknown as { p: Record<string, HostTensor>; base: HostTensor; y: HostTensor };
      expect(res.y.shape).toEqual([2, 4, 5]);
      expectEqual(res.y.data, res.base.data, "fresh output");
      expectEqual(res.p.loraA!.data, new Float64Array(33), "A");
      const B = res.p.loraB!.data;
      expect(B.some((v) => Math.abs(v) > 1)).toBe(true);
      const t = res.p.table!.data;
      expectClose(res.p.m!.data, [0, 1, 2, 3, 4].map((c) => Math.hypot(...Array.from({ length: 11 }, (_, v) => t[v * 5 + c]!))), 1e-6, "m");

      const e = randomEmb(rng, 11, 5, 3, 8, adapterScale(opts));
      const merged = evaluate(
        (p: any, ids: any) => ({ y: doraEmbedding.apply(p, ids, opts), ym: nn.embedding.apply(doraEmbedding.merge(p, opts) as never, ids), table: doraEmbedding.merge(p, opts).table }),
        [paramsOf(e), ids] as never,
      ) as unknown as Record<string, HostTensor>;
      expectClose(merged.ym!.data, merged.y!.data, 1e-12, "merged output");
      const n = doraEmbeddingForward(e).n;
      const delta = transpose(matmul(e.B, e.A, 5, 3, 11), 5, 11);
      expectClose(merged.table!.data, e.table.map((v, k) => (e.m[k % 5]! / n[k % 5]!) * (v + e.s * delta[k]!)), 1e-12, "table'");
    }));
});

describe("loraEmbedding", () => {
  it("adds s · Aᵀ[ids]·Bᵀ to the looked-up rows; merges to table + s·(B·A)ᵀ", () =>
    withSeed((rng) => {
      const opts = { rank: 2, alpha: 3 };
      const e = randomEmb(rng, 7, 4, 2, 9, adapterScale(opts));
      const res = evaluate(
        (p: any, ids: any) => ({ y: loraEmbedding.apply(p, ids, opts), ym: nn.embedding.apply(loraEmbedding.merge(p, opts) as never, ids) }),
        [paramsOf(e, false), H([e.ids.length], e.ids, "i32")] as never,
      ) as unknown as Record<string, HostTensor>;
      const delta = transpose(matmul(e.B, e.A, 4, 2, 7), 4, 7);
      const ref = e.ids.flatMap((id) => [0, 1, 2, 3].map((c) => e.table[id * 4 + c]! + e.s * delta[id * 4 + c]!));
      expectClose(res.y!.data, ref, 1e-12, "y");
      expectClose(res.ym!.data, ref, 1e-12, "merged");
    }));
});
