// Layers as init/apply pairs: initial parameters have the documented shapes and ranges,
// apply matches a plain-loop implementation written here, and a small typed transformer
// language model trains: valueAndGrad with respect to chosen parameters agrees with finite
// differences on sampled coordinates.
import { describe, expect, it } from "vitest";
import { HostTensor, crossEntropy, evaluate, flatten, interpret, nn, randomKey, run, specsOf, trace, valueAndGrad, type Tensor } from "@dorafuse/core";
import { expectClose } from "./support/numeric.js";
import { withSeed, type Rng } from "./support/random.js";
import { randomHost, randomIntHost } from "./support/frontend-check.js";

// ---- a plain-loop reference of the layers, on row arrays --------------------------------

type Mat = number[][];
const toMat = (h: HostTensor): Mat => {
  const n = h.shape[h.shape.length - 1]!;
  return Array.from({ length: h.data.length / n }, (_, r) => Array.from(h.data.subarray(r * n, (r + 1) * n)));
};
const linearRef = (x: number[], w: Mat, b?: number[]) => w.map((row, o) => row.reduce((s, v, i) => s + v * x[i]!, b ? b[o]! : 0));
const layerNormRef = (x: number[], g: number[], b: number[]) => {
  const mu = x.reduce((s, v) => s + v, 0) / x.length;
  const v = x.reduce((s, u) => s + (u - mu) ** 2, 0) / x.length;
  return x.map((u, j) => ((u - mu) / Math.sqrt(v + 1e-5)) * g[j]! + b[j]!);
};
const geluRef = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

type HostLinear = { w: HostTensor; b?: HostTensor };
const lin = (p: HostLinear, x: number[]) => linearRef(x, toMat(p.w), p.b ? Array.from(p.b.data) : undefined);

/** One pre-norm block on a sequence of token vectors (causal multi-head attention, GELU MLP). */
function blockRef(p: nn.BlockParams<number, number> & Record<string, never>, xs: Mat, heads: number): Mat {
  const P = p as unknown as {
    ln1: { gamma: HostTensor; beta: HostTensor };
    ln2: { gamma: HostTensor; beta: HostTensor };
    attn: Record<"q" | "k" | "v" | "o", HostLinear>;
    mlp: { up: HostLinear; down: HostLinear };
  };
  const ln = (l: { gamma: HostTensor; beta: HostTensor }, x: number[]) => layerNormRef(x, Array.from(l.gamma.data), Array.from(l.beta.data));
  const h1 = xs.map((x) => ln(P.ln1, x));
  const [q, k, v] = (["q", "k", "v"] as const).map((n) => h1.map((x) => lin(P.attn[n], x)));
  const E = xs[0]!.length;
  const dh = E / heads;
  const att = xs.map((_, t) => {
    const out = new Array<number>(E).fill(0);
    for (let h = 0; h < heads; h++) {
      const sc = Array.from({ length: t + 1 }, (_, s) => {
        let d = 0;
        for (let j = 0; j < dh; j++) d += q![t]![h * dh + j]! * k![s]![h * dh + j]!;
        return d / Math.sqrt(dh);
      });
      const m = Math.max(...sc);
      const z = sc.reduce((a, c) => a + Math.exp(c - m), 0);
      sc.forEach((c, s) => {
        for (let j = 0; j < dh; j++) out[h * dh + j]! += (Math.exp(c - m) / z) * v![s]![h * dh + j]!;
      });
    }
    return out;
  });
  const x1 = xs.map((x, t) => x.map((u, j) => u + lin(P.attn.o, att[t]!)[j]!));
  return x1.map((x) => {
    const up = lin(P.mlp.up, ln(P.ln2, x)).map(geluRef);
    const down = lin(P.mlp.down, up);
    return x.map((u, j) => u + down[j]!);
  });
}

// ---- layers -----------------------------------------------------------------------------

describe("layers", () => {
  it("linear: uniform ±1/√in init, optional bias, x·wᵀ + b over the last axis", () =>
    withSeed((rng) => {
      const p = evaluate((k) => nn.linear.init(k, { inDim: 16, outDim: 8 }), [randomKey(rng.int(0, 1e9))]);
      expect(p.w.shape).toEqual([8, 16]);
      expect(p.b!.shape).toEqual([8]);
      const all = [...p.w.data, ...p.b!.data];
      expect(Math.max(...all.map(Math.abs))).toBeLessThanOrEqual(1 / 4);
      expect(Math.max(...all.map(Math.abs))).toBeGreaterThan(0.2);
      const noBias = evaluate((k) => nn.linear.init(k, { inDim: 4, outDim: 2, bias: false }), [randomKey(1)]);
      expect(noBias.b).toBeUndefined();
      const x = randomHost(rng, [2, 3, 16]);
      const y = evaluate((pp, xx) => nn.linear.apply(pp, xx as never), [p, x]) as unknown as HostTensor;
      expect(y.shape).toEqual([2, 3, 8]);
      expectClose(y.data, toMat(x).flatMap((r) => lin(p, r)), 1e-12);
    }));

  it("embedding: N(0, 0.02²) table; lookup by ids", () =>
    withSeed((rng) => {
      const p = evaluate((k) => nn.embedding.init(k, { vocab: 500, dim: 40 }), [randomKey(rng.int(0, 1e9))]);
      const sd = Math.sqrt(p.table.data.reduce((s, v) => s + v * v, 0) / p.table.data.length);
      expect(Math.abs(sd - 0.02)).toBeLessThan(0.002);
      const ids = randomIntHost(rng, [3], 0, 499);
      const y = evaluate((pp, i) => nn.embedding.apply(pp, i), [p, ids]);
      expectClose(y.data, Array.from(ids.data).flatMap((i) => Array.from(p.table.data.subarray(i * 40, i * 40 + 40))), 0);
    }));

  it("layerNorm and rmsNorm start as the identity affine and normalize the last axis", () =>
    withSeed((rng) => {
      const ln = evaluate(() => nn.layerNorm.init(null, { dim: 5 }), []);
      expect(Array.from(ln.gamma.data)).toEqual([1, 1, 1, 1, 1]);
      expect(Array.from(ln.beta.data)).toEqual([0, 0, 0, 0, 0]);
      const x = randomHost(rng, [3, 5], { lo: -2, hi: 2 });
      const g = randomHost(rng, [5]) as unknown as HostTensor<[5], "f32">;
      const b = randomHost(rng, [5]) as unknown as HostTensor<[5], "f32">;
      const y = evaluate((xx, gg, bb) => nn.layerNorm.apply({ gamma: gg, beta: bb }, xx as never), [x, g, b]) as unknown as HostTensor;
      expectClose(y.data, toMat(x).flatMap((r) => layerNormRef(r, Array.from(g.data), Array.from(b.data))), 1e-12);
      const r = evaluate((xx, gg) => nn.rmsNorm.apply({ gamma: gg }, xx as never), [x, g]) as unknown as HostTensor;
      const rmsRef = toMat(x).flatMap((row) => {
        const ms = row.reduce((s, v) => s + v * v, 0) / row.length;
        return row.map((v, j) => (v / Math.sqrt(ms + 1e-6)) * g.data[j]!);
      });
      expectClose(r.data, rmsRef, 1e-12);
    }));

  it("mlp and the pre-norm transformer block match plain loops", () =>
    withSeed((rng) => {
      const cfg = { dim: 6, heads: 2, hidden: 10 } as const;
      const p = evaluate((k) => nn.transformerBlock.init(k, cfg), [randomKey(rng.int(0, 1e9))]);
      // give the norms non-trivial scales so the test sees them
      p.ln1.gamma.data.set(randomHost(rng, [6]).data);
      p.ln2.beta.data.set(randomHost(rng, [6]).data);
      const x = randomHost(rng, [2, 4, 6]);
      const y = evaluate((pp, xx) => nn.transformerBlock.apply(pp, xx as never, cfg), [p, x]) as unknown as HostTensor;
      expect(y.shape).toEqual([2, 4, 6]);
      const seqs = [0, 1].map((b) => toMat(x).slice(b * 4, b * 4 + 4));
      expectClose(y.data, seqs.flatMap((s) => blockRef(p as never, s, 2).flat()), 1e-12);
      const m = evaluate((pp, xx) => nn.mlp.apply(pp.mlp, xx as never), [p, x]) as unknown as HostTensor;
      expectClose(m.data, toMat(x).flatMap((r) => lin(p.mlp.down, lin(p.mlp.up, r).map(geluRef))), 1e-12);
    }));
});

// ---- a small transformer language model ---------------------------------------------------

const cfg = { vocab: 11, dim: 8, heads: 2, hidden: 16, layers: 2, maxSeq: 6 } as const;
type Params = nn.LMParams<11, 8, 16, 6>;

/** Next-token loss of a typed model: logits [batch, seq, 11] against targets [batch, seq]. */
function lmLoss(p: Params, tokens: Tensor<["batch", "seq"], "i32">, targets: Tensor<["batch", "seq"], "i32">): Tensor<[], "f32"> {
  const logits = nn.transformerLM.apply(p, tokens, cfg);
  return crossEntropy(logits, targets);
}

function sampleCoords(rng: Rng, tree: unknown, paths: string[], per: number): [string, number][] {
  const get = (path: string) => path.split(".").reduce((o: any, k) => o[k], tree) as HostTensor;
  return paths.flatMap((path) => Array.from({ length: per }, () => [path, rng.int(0, get(path).data.length - 1)] as [string, number]));
}

describe("a small transformer LM", () => {
  it("valueAndGrad with respect to chosen parameters matches finite differences", () =>
    withSeed((rng) => {
      const params = evaluate((k) => nn.transformerLM.init(k, cfg), [randomKey(rng.int(0, 1e9))]);
      // scale the embeddings up so the loss is not flat around the init
      for (const t of [params.tokens.table, params.positions.table]) t.data.set(t.data.map((v) => v * 30));
      const tokens = randomIntHost(rng, [2, 5], 0, 10) as unknown as HostTensor<["batch", "seq"], "i32">;
      const targets = randomIntHost(rng, [2, 5], 0, 10) as unknown as HostTensor<["batch", "seq"], "i32">;
      targets.data[3] = -100;
      // train the attention of block 1 and the head; freeze the rest
      const trainable = { blocks: [false, { attn: true }], head: true } as const;
      const step = trace((p, x, y) => valueAndGrad(lmLoss, { trainable })(p, x, y), specsOf([params, tokens, targets]), { dims: { batch: 2, seq: 5 } });
      const [loss, grads] = run(step, [params, tokens, targets]);
      expect(grads.blocks[0]!.attn.q.w).toBeNull();
      expect(grads.tokens.table).toBeNull();
      expect(grads.blocks[1]!.mlp.up.w).toBeNull();
      // finite differences of the forward loss at sampled coordinates
      const fwd = trace(lmLoss, specsOf([params, tokens, targets]), { dims: { batch: 2, seq: 5 } });
      const leaves = flattenHosts([params, tokens, targets]);
      const lossAt = (): number => interpret(fwd.graph, leaves.map((h) => h.data))[0]![0]!;
      expect(Math.abs(lossAt() - loss.data[0]!)).toBeLessThan(1e-12);
      const coords = sampleCoords(rng, params, ["blocks.1.attn.q.w", "blocks.1.attn.v.b", "blocks.1.attn.o.w", "head.w"], 3);
      for (const [path, i] of coords) {
        const h = path.split(".").reduce((o: any, k) => o[k], params) as HostTensor;
        const g = path.split(".").reduce((o: any, k) => o[k], grads) as HostTensor;
        const v = h.data[i]!;
        const eps = 1e-5;
        h.data[i] = v + eps;
        const up = lossAt();
        h.data[i] = v - eps;
        const down = lossAt();
        h.data[i] = v;
        const fd = (up - down) / (2 * eps);
        expect(Math.abs(g.data[i]! - fd), `${path}[${i}]: grad ${g.data[i]} vs fd ${fd}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
      }
      // recomputing each block in the backward (checkpoint) changes nothing numerically
      const ckptLoss = (p: Params, x: Tensor<["batch", "seq"], "i32">, y: Tensor<["batch", "seq"], "i32">) =>
        crossEntropy(nn.transformerLM.apply(p, x, { ...cfg, checkpoint: true }), y);
      const ckpt = trace((p, x, y) => valueAndGrad(ckptLoss, { trainable })(p, x, y), specsOf([params, tokens, targets]), { dims: { batch: 2, seq: 5 } });
      expect(ckpt.graph.nodes.filter((n) => n.op === "call")).toHaveLength(cfg.layers);
      const [loss2, grads2] = run(ckpt, [params, tokens, targets]);
      expectClose(loss2.data, loss.data, 1e-14, "checkpointed loss");
      expectClose(grads2.blocks[1]!.attn.q.w!.data, grads.blocks[1]!.attn.q.w!.data, 1e-12, "checkpointed q.w grad");
      expectClose(grads2.head.w.data, grads.head.w.data, 1e-12, "checkpointed head grad");
      const anyNonZero = coords.some(([path, i]) => (path.split(".").reduce((o: any, k) => o[k], grads) as HostTensor).data[i] !== 0);
      expect(anyNonZero).toBe(true);
    }));
});

const flattenHosts = (tree: unknown): HostTensor[] => flatten(tree, (v): v is HostTensor => v instanceof HostTensor)[0];
