// The pieces both families read their weights through. Weights may be stored in f16 (a frozen
// base); activations, norms, softmax and the loss are f32, so every weight is read as f32
// where it is used — inside the consuming kernel, not as a converted copy.
import { applyEmbedding, fill, nn, normal, type Key, type Tensor } from "@dorafuse/core";

type T = Tensor<number[], "f32">;
const t = (x: unknown): T => x as T;

/** x as f32 (a no-op when it is). */
export function f32(x: unknown): T {
  return t(x).dtype === "f32" ? t(x) : (t(x).cast("f32") as T);
}

/** Rows of an embedding table (plain, LoRA or DoRA) at `ids`, as f32. */
export function embed(layer: nn.EmbeddingParams<number, number, "f32" | "f16">, ids: Tensor, run: nn.AdapterRun): T {
  const table = { ...layer, table: f32(layer.table) };
  return t(run.adapters ? applyEmbedding(table as never, ids as never, run.adapters) : nn.embedding.apply(table as never, ids as never));
}

/** A linear layer of any kind on x, its base read as f32. */
export const linear = (layer: unknown, x: Tensor, run: nn.AdapterRun, key: Key | undefined): T => t(nn.project(layer as never, x, run, key));

export const rmsNorm = (p: { gamma: Tensor }, x: Tensor, eps: number): T => t(nn.rmsNorm.apply({ gamma: f32(p.gamma) } as never, x as never, { eps }));
export const layerNorm = (p: { gamma: Tensor; beta: Tensor }, x: Tensor, eps: number): T => t(nn.layerNorm.apply({ gamma: f32(p.gamma), beta: f32(p.beta) } as never, x as never, { eps }));

/** transformers' _init_weights for these families: weights N(0, std), biases 0. */
export function initLinear(key: Key, inDim: number, outDim: number, bias: boolean, std: number): nn.LinearParams<number, number> {
  const w = normal(key, [outDim, inDim], { std });
  return (bias ? { w, b: fill([outDim], 0) } : { w }) as never;
}
