// Composite ops (written in primitives) against formulas evaluated here in plain float64,
// and their gradients (through the primitives' VJP rules) against finite differences.
import { describe, expect, it } from "vitest";
import {
  HostTensor,
  attention,
  crossEntropy,
  evaluate,
  gelu,
  layerNorm,
  logSoftmax,
  logSumExp,
  multiHeadAttention,
  embedding,
  relu,
  rmsNorm,
  sigmoid,
  silu,
  softmax,
  type Tensor,
} from "@dorafuse/core";
import { expectClose, tabulate } from "./support/numeric.js";
import { withSeed, type Rng } from "./support/random.js";
import { checkGradients, randomHost, randomIntHost } from "./support/frontend-check.js";

type W = Tensor<number[], "f32">;
type WI = Tensor<number[], "i32">;
const ev = (fn: (...xs: never[]) => unknown, args: HostTensor[]): HostTensor => evaluate(fn as never, args as never) as unknown as HostTensor;

/** Rows of the last axis of `x` (shape [..., n]) as arrays. */
const rows = (x: HostTensor): number[][] => {
  const n = x.shape[x.shape.length - 1]!;
  return Array.from({ length: x.data.length / n }, (_, r) => Array.from(x.data.subarray(r * n, r * n + n)));
};
const lse = (r: number[]): number => {
  const m = Math.max(...r);
  return m + Math.log(r.reduce((s, v) => s + Math.exp(v - m), 0));
};

describe("activations and the softmax family", () => {
  it("elementwise activations match their formulas", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [4, 5], { lo: -4, hi: 4 });
      const cases: [(t: W) => unknown, (v: number) => number][] = [
        [sigmoid, (v) => 1 / (1 + Math.exp(-v))],
        [silu, (v) => v / (1 + Math.exp(-v))],
        [relu, (v) => Math.max(v, 0)],
        [gelu, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))],
      ];
      for (const [f, ref] of cases) expectClose(ev(f, [x]).data, x.data.map(ref), 1e-12, f.name);
    }));

  it("softmax, logSoftmax and logSumExp over the last and the first axis", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [3, 6], { lo: -5, hi: 5 });
      const sm = rows(x).flatMap((r) => r.map((v) => Math.exp(v - lse(r))));
      expectClose(ev((t: W) => softmax(t), [x]).data, sm, 1e-12, "softmax");
      expectClose(ev((t: W) => logSoftmax(t), [x]).data, rows(x).flatMap((r) => r.map((v) => v - lse(r))), 1e-12, "logSoftmax");
      expectClose(ev((t: W) => logSumExp(t), [x]).data, rows(x).map(lse), 1e-12, "logSumExp");
      const col = (j: number) => [0, 1, 2].map((i) => x.data[i * 6 + j]!);
      expectClose(ev((t: W) => softmax(t, 0), [x]).data, tabulate([3, 6], ([i, j]) => Math.exp(x.data[i! * 6 + j!]! - lse(col(j!)))), 1e-12, "softmax axis 0");
      const big = new HostTensor([2, 3], Float64Array.of(1000, 1001, 1002, -1000, -1001, -1002), "f32");
      const out = ev((t: W) => softmax(t), [big]).data;
      expect(out.every(Number.isFinite)).toBe(true);
    }));

  it("gradients of the activations and the softmax family match finite differences", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [3, 5], { lo: -3, hi: 3 });
      for (const f of [sigmoid, silu, gelu, softmax, logSoftmax, (t: W) => logSumExp(t, -1)] as ((t: W) => W)[]) checkGradients(f, [x], rng);
    }));
});

describe("crossEntropy", () => {
  const ref = (logits: HostTensor, labels: HostTensor, ignore: number) => {
    const per = rows(logits).map((r, i) => (labels.data[i] === ignore ? 0 : lse(r) - r[labels.data[i]!]!));
    const count = Array.from(labels.data).filter((l) => l !== ignore).length;
    return { per, sum: per.reduce((a, b) => a + b, 0), mean: per.reduce((a, b) => a + b, 0) / Math.max(count, 1) };
  };

  it("with integer labels and ignored positions, in each reduction", () =>
    withSeed((rng) => {
      const logits = randomHost(rng, [2, 3, 7], { lo: -3, hi: 3 });
      const labels = randomIntHost(rng, [2, 3], 0, 6);
      labels.data[1] = -100;
      labels.data[4] = -100;
      const r = ref(logits, labels, -100);
      expectClose(ev((l: W, y: WI) => crossEntropy(l, y as never), [logits, labels]).data, [r.mean], 1e-12, "mean");
      expectClose(ev((l: W, y: WI) => crossEntropy(l, y as never, { reduction: "sum" }), [logits, labels]).data, [r.sum], 1e-12, "sum");
      const none = ev((l: W, y: WI) => crossEntropy(l, y as never, { reduction: "none" }), [logits, labels]);
      expect(none.shape).toEqual([2, 3]);
      expectClose(none.data, r.per, 1e-12, "none");
      labels.data[0] = 3;
      labels.data[1] = 3;
      labels.data[4] = 5;
      const r3 = ref(logits, labels, 3);
      expectClose(ev((l: W, y: WI) => crossEntropy(l, y as never, { ignoreIndex: 3 }), [logits, labels]).data, [r3.mean], 1e-12, "ignoreIndex 3");
    }));

  it("an all-ignored batch gives 0, not NaN", () => {
    const logits = new HostTensor([2, 3], Float64Array.of(1, 2, 3, 4, 5, 6), "f32");
    const labels = new HostTensor([2], Float64Array.of(-100, -100), "i32");
    expect(ev((l: W, y: WI) => crossEntropy(l, y as never), [logits, labels]).data[0]).toBe(0);
  });

  it("its gradient with respect to the logits matches finite differences", () =>
    withSeed((rng) => {
      const logits = randomHost(rng, [4, 5], { lo: -2, hi: 2 });
      const labels = randomIntHost(rng, [4], 0, 4);
      labels.data[2] = -100;
      checkGradients((l, y) => crossEntropy(l as W, y as never), [logits, labels], rng);
    }));
});

describe("normalizations", () => {
  const normRef = (x: HostTensor, g: HostTensor, b: HostTensor | null, rms: boolean, eps: number) =>
    rows(x).flatMap((r) => {
      const n = r.length;
      const mu = rms ? 0 : r.reduce((s, v) => s + v, 0) / n;
      const v = r.reduce((s, u) => s + (u - mu) ** 2, 0) / n;
      return r.map((u, j) => ((u - mu) / Math.sqrt(v + eps)) * g.data[j]! + (b ? b.data[j]! : 0));
    });

  it("layerNorm and rmsNorm over the last axis, with scale and shift", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [2, 3, 6], { lo: -2, hi: 3 });
      const g = randomHost(rng, [6]);
      const b = randomHost(rng, [6]);
      expectClose(ev((t: W, gg: W, bb: W) => layerNorm(t, gg as never, bb as never), [x, g, b]).data, normRef(x, g, b, false, 1e-5), 1e-12, "layerNorm");
      expectClose(ev((t: W, gg: W) => rmsNorm(t, gg as never, 1e-6), [x, g]).data, normRef(x, g, null, true, 1e-6), 1e-12, "rmsNorm");
      const plain = ev((t: W) => layerNorm(t), [x]);
      expectClose(plain.data, normRef(x, new HostTensor([6], new Float64Array(6).fill(1), "f32"), null, false, 1e-5), 1e-12, "no affine");
    }));

  it("gradients with respect to x, scale and shift match finite differences", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [3, 5], { lo: -2, hi: 2 });
      const g = randomHost(rng, [5]);
      const b = randomHost(rng, [5]);
      checkGradients((t, gg, bb) => layerNorm(t as W, gg as never, bb as never), [x, g, b], rng);
      checkGradients((t, gg) => rmsNorm(t as W, gg as never), [x, g], rng);
    }));
});

describe("attention and embedding", () => {
  /** Multi-head attention by loops: per batch, head and query, scores → softmax → weighted sum. */
  function mhaRef(q: HostTensor, k: HostTensor, v: HostTensor, heads: number, causal: boolean): Float64Array {
    const [B, T, E] = q.shape as [number, number, number];
    const dh = E / heads;
    const get = (x: HostTensor, b: number, t: number, e: number) => x.data[(b * T + t) * E + e]!;
    return tabulate([B, T, E], ([b, t, e]) => {
      const h = Math.floor(e! / dh);
      const keys = Array.from({ length: T }, (_, s) => s).filter((s) => !causal || s <= t!);
      const scores = keys.map((s) => {
        let dot = 0;
        for (let d = 0; d < dh; d++) dot += get(q, b!, t!, h * dh + d) * get(k, b!, s, h * dh + d);
        return dot / Math.sqrt(dh);
      });
      const m = Math.max(...scores);
      const w = scores.map((s) => Math.exp(s - m));
      const z = w.reduce((a, c) => a + c, 0);
      return keys.reduce((acc, s, i) => acc + (w[i]! / z) * get(v, b!, s, e!), 0);
    });
  }

  it("multi-head attention, causal and not, matches loops", () =>
    withSeed((rng) => {
      const [q, k, v] = [0, 1, 2].map(() => randomHost(rng, [2, 4, 6]));
      for (const causal of [true, false]) {
        const out = ev((a: W, b: W, c: W) => multiHeadAttention(a as never, b as never, c as never, 3, { causal }), [q!, k!, v!]);
        expect(out.shape).toEqual([2, 4, 6]);
        expectClose(out.data, mhaRef(q!, k!, v!, 3, causal), 1e-12, causal ? "causal" : "full");
      }
    }));

  it("causal attention with fewer queries than keys aligns the queries to the end", () =>
    withSeed((rng) => {
      const q = randomHost(rng, [2, 3]);
      const k = randomHost(rng, [5, 3]);
      const v = randomHost(rng, [5, 2]);
      const out = ev((a: W, b: W, c: W) => attention(a, b, c, { causal: true }), [q, k, v]);
      const ref = tabulate([2, 2], ([i, j]) => {
        const keys = [0, 1, 2, 3, 4].filter((s) => s <= i! + 3);
        const sc = keys.map((s) => [0, 1, 2].reduce((a, d) => a + q.data[i! * 3 + d]! * k.data[s * 3 + d]!, 0) / Math.sqrt(3));
        const z = sc.reduce((a, c) => a + Math.exp(c), 0);
        return keys.reduce((a, s, n) => a + (Math.exp(sc[n]!) / z) * v.data[s * 2 + j!]!, 0);
      });
      expectClose(out.data, ref, 1e-12);
    }));

  it("gradients of causal multi-head attention match finite differences", () =>
    withSeed((rng) => {
      const args = [0, 1, 2].map(() => randomHost(rng, [1, 3, 4]));
      checkGradients((a, b, c) => multiHeadAttention(a as never, b as never, c as never, 2, { causal: true }), args, rng);
    }));

  it("embedding looks up rows and sends gradients back to them", () =>
    withSeed((rng: Rng) => {
      const table = randomHost(rng, [7, 3]);
      const ids = randomIntHost(rng, [2, 4], 0, 6);
      const out = ev((t: W, i: WI) => embedding(t as never, i), [table, ids]);
      expect(out.shape).toEqual([2, 4, 3]);
      expectClose(out.data, tabulate([2, 4, 3], (idx) => table.data[ids.data[idx[0]! * 4 + idx[1]!]! * 3 + idx[2]!]!), 0);
      const grads = checkGradients((t, i) => embedding(t as never, i as never), [table, ids], rng);
      expect(grads).toHaveLength(1);
    }));
});
