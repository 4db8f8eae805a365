// nn's models running the adapters their parameters carry (the `adapters` option): the
// factored LoRA/DoRA path of every adapted layer, equal to folding them in with mergeAdapters
// when there is no dropout, with dropout drawn per layer from the key when there is.
import { describe, expect, it } from "vitest";
import { AdapterError, adapt, adapterMask, crossEntropy, evaluate, HostTensor, mergeAdapters, nn, randomKey, valueAndGrad, type Tensor } from "@dorafuse/core";
import { expectClose } from "./support/numeric.js";
import { withSeed, type Rng } from "./support/random.js";

const LM = { vocab: 11, dim: 8, heads: 2, hidden: 16, layers: 2, maxSeq: 6 } as const;
const ids = (rng: Rng) => new HostTensor([2, 5], Float64Array.from({ length: 10 }, () => rng.int(0, LM.vocab - 1)), "i32");

/** A transformer with trained-looking adapters (B nonzero) on the projections, the MLP and the token embedding. */
function adapted(rng: Rng, kind: "lora" | "dora", dropout = 0) {
  const cfg = { kind, targets: ["q", "v", "up", "down", "tokens"], rank: 2, alpha: 3, dropout } as const;
  const base = evaluate((k) => nn.transformerLM.init(k, LM), [randomKey(rng.int(0, 1e6))]);
  const fresh = evaluate((k: never, p: never) => adapt(k, p, cfg as never).params, [randomKey(rng.int(0, 1e6)), base] as never);
  // a trained adapter: B (and for embeddings A) away from zero
  const perturb = (t: unknown): unknown => {
    if (t instanceof HostTensor) return t;
    if (Array.isArray(t)) return t.map(perturb);
    if (t && typeof t === "object") {
      const o = t as Record<string, unknown>;
      return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, (k === "loraB" || k === "loraA") && v instanceof HostTensor ? new HostTensor(v.shape, v.data.map(() => rng.uniform(-0.3, 0.3)), "f32") : perturb(v)]));
    }
    return t;
  };
  return { params: perturb(fresh), cfg };
}

const logits = (p: never, x: never, run: Record<string, unknown>) => nn.transformerLM.apply(p, x, { heads: LM.heads, ...run }) as unknown as Tensor<number[], "f32">;

describe("nn models with the adapters option", () => {
  for (const kind of ["lora", "dora"] as const) {
    it(`${kind}: the factored path equals mergeAdapters without dropout, values and gradients`, () =>
      withSeed((rng) => {
        const { params, cfg } = adapted(rng, kind);
        const [x, y] = [ids(rng), ids(rng)];
        const trainable = adapterMask(params);
        const lossOf = (run: (p: never) => [never, Record<string, unknown>]) => (p: never, xx: never, yy: never) => {
          const [q, r] = run(p);
          return crossEntropy(logits(q, xx, r) as never, yy as never);
        };
        const factored = lossOf((p) => [p, { adapters: cfg }]);
        const merged = lossOf((p) => [mergeAdapters(p, cfg) as never, {}]);
        const [lf, gf] = evaluate((p: never, xx: never, yy: never) => valueAndGrad(factored, { trainable: trainable as never })(p, xx, yy), [params, x, y] as never) as unknown as [HostTensor, unknown];
        const [lm, gm] = evaluate((p: never, xx: never, yy: never) => valueAndGrad(merged, { trainable: trainable as never })(p, xx, yy), [params, x, y] as never) as unknown as [HostTensor, unknown];
        expectClose(lf.data, lm.data, 1e-12, "loss");
        const leaves = (t: unknown): HostTensor[] => (t instanceof HostTensor ? [t] : Array.isArray(t) ? t.flatMap(leaves) : t && typeof t === "object" ? Object.keys(t).sort().flatMap((k) => leaves((t as Record<string, unknown>)[k])) : []);
        const [a, b] = [leaves(gf), leaves(gm)];
        // 9 adapted layers (q, v, up, down of two blocks, the token table), 2 or 3 leaves each
        expect(a.length).toBe(kind === "dora" ? 27 : 18);
        a.forEach((g, i) => expectClose(g.data, b[i]!.data, 1e-10, `gradient ${i}`));
      }));
  }

  it("with dropout: needs a key to train, draws a different mask per layer, and is the base path when deterministic", () =>
    withSeed((rng) => {
      const { params, cfg } = adapted(rng, "dora", 0.5);
      const x = ids(rng);
      expect(() => evaluate((p: never, xx: never) => logits(p, xx, { adapters: cfg }), [params, x] as never)).toThrow(AdapterError);
      expect(() => evaluate((p: never, xx: never) => logits(p, xx, { adapters: cfg }), [params, x] as never)).toThrow(/dropout 0.5 needs a key/);
      const run = (r: (k: never) => Record<string, unknown>) => (evaluate((p: never, xx: never, k: never) => logits(p, xx, { adapters: cfg, ...r(k) }), [params, x, randomKey(7)] as never) as unknown as HostTensor).data;
      const eval_ = run(() => ({ deterministic: true }));
      const merged = (evaluate((p: never, xx: never) => logits(mergeAdapters(p, cfg) as never, xx, {}), [params, x] as never) as unknown as HostTensor).data;
      expectClose(eval_, merged, 1e-12, "deterministic = merged");
      const a = run((k) => ({ key: k }));
      const b = run((k) => ({ key: k }));
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(Math.max(...a.map((v, i) => Math.abs(v - eval_[i]!)))).toBeGreaterThan(1e-3);
    }));
});
