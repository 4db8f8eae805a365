// The next-token loss of a family's model, as the training and evaluation steps take it: the
// batch carries the token windows and the family's constant tables (RoPE's cos and sin), so
// one compiled step serves every batch, and adapters run on their factored path with dropout
// drawn from the step's key.
import { crossEntropy, type AdapterOptions, type Tensor } from "@dorafuse/core";
import type { StepContext } from "@dorafuse/compiler";
import type { BaseConfig, Family } from "./families/family.js";

/** A batch: `ids` and `targets` `[batch, seq]`, and the family's buffers by name. */
export type LmBatch = { readonly ids: Tensor<[number, number], "i32">; readonly targets: Tensor<[number, number], "i32"> } & Readonly<Record<string, Tensor>>;

export function languageModelLoss<C extends BaseConfig>(family: Family<C>, config: C, adapters?: AdapterOptions) {
  return (params: unknown, batch: LmBatch, ctx: StepContext): Tensor<[], "f32"> => {
    const { ids, targets, ...buffers } = batch;
    const run = adapters ? { adapters, key: ctx.key, deterministic: !ctx.training } : {};
    return crossEntropy(family.forward(params, buffers, ids, config, run) as never, targets as never) as Tensor<[], "f32">;
  };
}
