// A tiny GPT-style language model with DoRA adapters on its attention and MLP projections,
// and the entries `dorafuse compile` turns into typed modules:
//
//   dorafuse compile examples/aot/model.ts --entry train    --out examples/aot/gen
//   dorafuse compile examples/aot/model.ts --entry validate --out examples/aot/gen
//   dorafuse compile examples/aot/model.ts --entry forward  --out examples/aot/gen
//
// The model is core's nn.transformerLM with its `adapters` option, which runs each projection
// by its parameters' keys (plain, LoRA, DoRA) — the factored DoRA path, with dropout on the
// adapter input — so the same code trains fully, with LoRA or with DoRA.
import {
  adamw,
  adapt,
  adapterMask,
  crossEntropy,
  evaluate,
  nn,
  randomKey,
  spec,
  warmupCosineDecay,
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
  return nn.transformerLM.apply(p, ids, { heads: lm.heads, adapters: adapter, ...(key ? { key } : { deterministic: true }) }) as F;
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
