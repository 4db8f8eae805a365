// A tiny GPT-style language model with DoRA adapters on its attention and MLP projections,
// and the entries `dorafuse compile` turns into typed modules:
//
//   dorafuse compile examples/aot/model.ts --entry train    --out examples/aot/gen
//   dorafuse compile examples/aot/model.ts --entry validate --out examples/aot/gen
//   dorafuse compile examples/aot/model.ts --entry forward  --out examples/aot/gen
//
// The model is written with core's ops and `applyLinear`, which runs a projection of any kind
// (plain, LoRA, DoRA) by its parameters' keys — the factored DoRA path, with dropout on the
// adapter input — so the same code trains fully, with LoRA or with DoRA.
import {
  adamw,
  adapt,
  adapterMask,
  applyLinear,
  crossEntropy,
  embedding,
  evaluate,
  gelu,
  iota,
  layerNorm,
  multiHeadAttention,
  nn,
  randomKey,
  spec,
  splitKey,
  warmupCosineDecay,
  type ApplyOptions,
  type Key,
  type Tensor,
} from "@dorafuse/core";
import { defineEntry, defineEvalStep, defineTrainStep, type StepContext } from "@dorafuse/compiler";

export const lm = { vocab: 32, dim: 32, heads: 2, hidden: 64, layers: 1, maxSeq: 16 } as const;
export const shape = { batch: 4, seq: 16 } as const;
export const adapter = { kind: "dora", targets: ["q", "k", "v", "o", "up", "down"], rank: 4, alpha: 8, dropout: 0.05 } as const;

type F = Tensor<number[], "f32">;
type Params = ReturnType<typeof nn.transformerLM.init<32, 32, 64, 16>>;

const base = evaluate((k) => nn.transformerLM.init(k, lm), [randomKey(0)]);
/** The base model with DoRA on every attention and MLP projection. */
export const params = evaluate((k, p) => adapt(k, p, adapter).params, [randomKey(1), base]);
export const trainable = adapterMask(params);

/** Logits [batch, seq, vocab]; `key` draws the adapters' dropout (none when evaluating). */
export function logits(p: Params, ids: Tensor<[number, number], "i32">, key: Key | null): F {
  const seq = ids.shape[1];
  const keys = key ? splitKey(key, 6 * p.blocks.length) : [];
  let next = 0;
  const run = (): ApplyOptions => (key ? { key: keys[next++]! } : { deterministic: true });
  const proj = (layer: unknown, x: F): F => applyLinear(layer as never, x as never, adapter, run()) as F;
  let x = (embedding(p.tokens.table as never, ids as never) as F).add(embedding(p.positions.table as never, iota([seq], 0) as never) as F);
  for (const b of p.blocks) {
    const h = layerNorm(x as never, b.ln1.gamma as never, b.ln1.beta as never) as F;
    const a = multiHeadAttention(proj(b.attn.q, h) as never, proj(b.attn.k, h) as never, proj(b.attn.v, h) as never, lm.heads, { causal: true }) as F;
    x = x.add(proj(b.attn.o, a));
    const m = layerNorm(x as never, b.ln2.gamma as never, b.ln2.beta as never) as F;
    x = x.add(proj(b.mlp.down, gelu(proj(b.mlp.up, m) as never) as F));
  }
  return applyLinear(p.head as never, layerNorm(x as never, p.lnf.gamma as never, p.lnf.beta as never) as never, adapter, { deterministic: true }) as F;
}

export interface Batch {
  ids: Tensor<[number, number], "i32">;
  targets: Tensor<[number, number], "i32">;
}

/** Next-token cross-entropy, with the accuracy of the most likely token as a metric. */
export function loss(p: Params, batch: Batch, ctx: StepContext) {
  const out = logits(p, batch.ids, ctx.training ? ctx.key : null);
  const accuracy = out.argmax(-1).eq(batch.targets as never).cast("f32").mean() as Tensor<[], "f32">;
  return { loss: crossEntropy(out as never, batch.targets as never) as Tensor<[], "f32">, metrics: { accuracy } };
}

const batch = { ids: spec([shape.batch, shape.seq], "i32"), targets: spec([shape.batch, shape.seq], "i32") };

/** AdamW with warm-up and cosine decay, moments for the adapters only, gradients clipped at 1. */
export const train = defineTrainStep(loss, adamw({ lr: warmupCosineDecay({ peak: 3e-3, warmupSteps: 10, decaySteps: 200 }), weightDecay: 0, clipNorm: 1, mask: trainable }), {
  params,
  batch,
  trainable,
  adapter,
  key: 42,
});

export const validate = defineEvalStep(loss, { params, batch });

export const forward = defineEntry((p: Params, ids: Tensor<[number, number], "i32">) => ({ logits: logits(p, ids, null) }), [params, batch.ids], { names: ["params", "ids"] });
