// The next-token loss of a family's model, as the training and evaluation steps take it: the
// batch carries the token windows and the family's constant tables (RoPE's cos and sin), so
// one compiled step serves every batch, and adapters run on their factored path with dropout
// drawn from the step's key.
import { crossEntropy, spec, type AdapterOptions, type Tensor, type TensorSpec } from "@dorafuse/core";
import type { StepContext } from "@dorafuse/compiler";
import { upload, type Device, type Tensor as GpuTensor } from "@dorafuse/runtime";
import type { Windows } from "./data.js";
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

/** One micro-batch's spec: ids and targets `[batch, seq]`, and the family's tables for `seq` positions. */
export function lmBatchSpec<C extends BaseConfig>(family: Family<C>, config: C, batch: number, seq: number): Record<string, TensorSpec> {
  const tables = family.buffers(config, seq);
  return { ids: spec([batch, seq], "i32"), targets: spec([batch, seq], "i32"), ...Object.fromEntries(Object.entries(tables).map(([k, t]) => [k, spec([...t.shape], t.dtype)])) };
}

/**
 * The family's tables on the GPU, uploaded once for every step. With gradient accumulation
 * every batch leaf gains the micro-batch axis, so `stack` > 1 repeats them along it.
 */
export function uploadTables<C extends BaseConfig>(device: Device, family: Family<C>, config: C, seq: number, stack = 1): Record<string, GpuTensor> {
  const tables = family.buffers(config, seq);
  return Object.fromEntries(
    Object.entries(tables).map(([k, t]) => {
      const data = Float32Array.from({ length: stack * t.data.length }, (_, i) => t.data[i % t.data.length]!);
      return [k, upload(device, data, { shape: stack > 1 ? [stack, ...t.shape] : [...t.shape], dtype: "f32", name: k })];
    }),
  );
}

/** Micro-batches stacked on a leading axis, as a step with `accumulate: windows.length` takes them. */
export function stackWindows(windows: readonly Windows[]): { ids: { shape: number[]; data: Int32Array }; targets: { shape: number[]; data: Int32Array } } {
  const stack = (key: "ids" | "targets") => {
    const [b, s] = windows[0]![key].shape;
    const data = new Int32Array(windows.length * b * s);
    windows.forEach((w, k) => data.set(w[key].data, k * b * s));
    return { shape: [windows.length, b, s], data };
  };
  return { ids: stack("ids"), targets: stack("targets") };
}
