// Core benchmark: how long tracing and differentiating a training step takes — the part of
// compiling a user sees before any kernel exists. A GPT-style model, 6 layers, d=256, 4 heads,
// sequence 128, next-token cross-entropy, and an AdamW update, traced into one graph.
// Medians side by side, with ratios to the forward pass and node counts.
//   node scripts/bench.mjs packages/core/bench/core.bench.ts [--quick]
import { crossEntropy, flatten, nn, scalar, spec, trace, unflatten, valueAndGrad, type Tensor, type TensorShape } from "@dorafuse/core";

const quick = process.argv.includes("--quick");
const repeats = quick ? 3 : 11;

const cfg = { vocab: 512, dim: 256, heads: 4, hidden: 1024, layers: 6, maxSeq: 128 } as const;
const batch = 8;
type Params = nn.LMParams<512, 256, 1024, 128>;
type Tokens = Tensor<["batch", 128], "i32">;
type F = Tensor<TensorShape, "f32">;

function loss(p: Params, tokens: Tokens, targets: Tokens): Tensor<[], "f32"> {
  return crossEntropy(nn.transformerLM.apply(p, tokens, cfg), targets);
}

/** The same model with each block's activations recomputed in the backward pass. */
function lossCheckpointed(p: Params, tokens: Tokens, targets: Tokens): Tensor<[], "f32"> {
  return crossEntropy(nn.transformerLM.apply(p, tokens, { ...cfg, checkpoint: true }), targets);
}

// ---- a minimal AdamW (PyTorch defaults), pure functions over pytrees ---------------------

interface AdamState<P> {
  readonly m: P;
  readonly v: P;
  readonly t: Tensor<[], "f32">;
}
const isT = (x: unknown): x is F => typeof x === "object" && x !== null && "node" in x;

function adamw<P>(params: P, grads: unknown, s: AdamState<P>, lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01): { params: P; state: AdamState<P> } {
  const [ps, def] = flatten(params, isT);
  const [gs] = flatten(grads, (x): x is F | null => x === null || isT(x));
  const [ms] = flatten(s.m, isT);
  const [vs] = flatten(s.v, isT);
  const t = s.t.add(1);
  // bias corrections 1 − βᵗ, with βᵗ = exp(t·ln β) since t is traced
  const c1 = scalar(1).sub(t.mul(Math.log(b1)).exp());
  const c2 = scalar(1).sub(t.mul(Math.log(b2)).exp());
  const out = ps.map((p, i) => {
    const g = gs[i];
    if (!g) return [p, ms[i]!, vs[i]!] as const;
    const m = ms[i]!.mul(b1).add(g.mul(1 - b1));
    const v = vs[i]!.mul(b2).add(g.square().mul(1 - b2));
    const step = m.div(c1).div(v.div(c2).sqrt().add(eps)).add(p.mul(wd));
    return [p.sub(step.mul(lr)), m, v] as const;
  });
  const tree = (k: 0 | 1 | 2) => unflatten<P>(def, out.map((o) => o[k]));
  return { params: tree(0), state: { m: tree(1), v: tree(2), t } };
}

// ---- specs --------------------------------------------------------------------------------

const paramSpecs = trace((k) => nn.transformerLM.init(k, cfg), [spec([2], "u32")]).resultSpecs();
const tokenSpec = spec(["batch", 128], "i32");
const stateSpecs = { m: paramSpecs, v: paramSpecs, t: spec([], "f32") };
const opts = { dims: { batch } };

const cases: [string, () => { nodeCount: number }][] = [
  ["forward (loss)", () => trace(loss, [paramSpecs, tokenSpec, tokenSpec], opts)],
  ["forward + grad", () => trace((p, x, y) => valueAndGrad(loss)(p, x, y), [paramSpecs, tokenSpec, tokenSpec], opts)],
  [
    "train step (grad + AdamW)",
    () =>
      trace(
        (p, s, x, y) => {
          const [l, g] = valueAndGrad(loss)(p, x, y);
          return { loss: l, ...adamw(p, g, s as AdamState<Params>) };
        },
        [paramSpecs, stateSpecs, tokenSpec, tokenSpec],
        opts,
      ),
  ],
  [
    "train step, call sites recorded",
    () =>
      trace(
        (p, s, x, y) => {
          const [l, g] = valueAndGrad(loss)(p, x, y);
          return { loss: l, ...adamw(p, g, s as AdamState<Params>) };
        },
        [paramSpecs, stateSpecs, tokenSpec, tokenSpec],
        { ...opts, sites: true },
      ),
  ],
  [
    "train step, checkpointed blocks",
    () =>
      trace(
        (p, s, x, y) => {
          const [l, g] = valueAndGrad(lossCheckpointed)(p, x, y);
          return { loss: l, ...adamw(p, g, s as AdamState<Params>) };
        },
        [paramSpecs, stateSpecs, tokenSpec, tokenSpec],
        opts,
      ),
  ],
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const results = cases.map(([name, fn]) => {
  const first = fn(); // warm-up (JIT), and the node count
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return { name, ms: median(times), nodes: first.nodeCount };
});

const base = results[0]!.ms;
const header = ["case", "median ms", "× forward", "nodes"];
const rows = results.map((r) => [r.name, r.ms.toFixed(1), (r.ms / base).toFixed(2), String(r.nodes)]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
console.log(`trace + differentiate: GPT ${cfg.layers} layers, d=${cfg.dim}, ${cfg.heads} heads, seq ${cfg.maxSeq}, batch ${batch}; ${repeats} runs each`);
console.log(line(header));
for (const r of rows) console.log(line(r));
