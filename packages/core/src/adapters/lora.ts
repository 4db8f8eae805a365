// LoRA on a linear layer, as Hugging Face PEFT defines it: y = x·Wᵀ + b + s·(x'·Aᵀ)·Bᵀ with
// the base W (out, in) frozen, A (r, in) Kaiming-uniform, B (out, r) zero, s = alpha / r, and
// x' = dropout(x). The parameters extend nn.linear's ({ w, b? } + { loraA, loraB }), so
// nn.linear.apply on them is the base layer.
import type { Tensor } from "../tensor/tensor.js";
import type { Check, Dim, MatMul, Ok, Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { fill, resolveShape } from "../tensor/emit.js";
import { type Key, splitKey, uniform } from "../ops/random.js";
import { linear, type LinearConfig, type LinearParams } from "../nn/layers.js";
import { type AdapterOptions, type ApplyOptions, adapterInput, adapterScale, checkFactors, checkOptions } from "./config.js";

/** Internal view of a tensor: shapes and dtypes are checked at trace time. */
export type Wide = Tensor<Dim[], "f32">;
export const wide = (x: unknown): Wide => x as Wide;

/** A base weight as f32: adapters train and merge in f32 over a base that may be stored in f16. */
export const asF32 = (x: unknown): Wide => (wide(x).dtype === "f32" ? wide(x) : wide(wide(x).cast("f32")));

/** A merged weight back in the dtype its base was stored in. */
export const inDType = (x: Wide, like: unknown): Wide => (wide(like).dtype === x.dtype ? x : wide(x.cast(wide(like).dtype as FloatDType)));

export interface LoraParams<I extends Dim = Dim, O extends Dim = Dim, R extends Dim = Dim, D extends FloatDType = "f32"> extends LinearParams<I, O, D> {
  /** A: (r, in), PEFT `lora_A.weight`. */
  readonly loraA: Tensor<[R, I], D>;
  /** B: (out, r), PEFT `lora_B.weight`. */
  readonly loraB: Tensor<[O, R], D>;
}

/** PEFT's A: kaiming_uniform(a = √5) on (r, in), which is uniform in ±1/√in; B zero. */
export function initFactors(key: Key, out: number, inDim: number, rank: number): { loraA: Wide; loraB: Wide } {
  const bound = 1 / Math.sqrt(inDim);
  return { loraA: wide(uniform(key, [rank, inDim], { low: -bound, high: bound })), loraB: wide(fill([out, rank], 0, "f32")) };
}

/** x·Wᵀ (+ b): the frozen base layer. */
export function baseOutput(p: LinearParams<Dim, Dim, FloatDType>, x: Wide): Wide {
  const y = x.matmul(wide(p.w).mT());
  return p.b ? y.add(wide(p.b)) : y;
}

/** The dimensions of a layer's base weight, checked against its factors and options. */
export function layerDims(where: string, p: LoraParams<Dim, Dim, Dim, FloatDType>, opts: AdapterOptions): [out: number, inDim: number] {
  checkOptions(where, opts);
  const [out, inDim] = p.w.shape as [number, number];
  checkFactors(where, out, inDim, p.loraA, p.loraB, opts.rank);
  return [out, inDim];
}

/** Config of a fresh layer: the base's sizes and bias plus the adapter's options. */
export type AdapterLinearConfig<I extends Dim, O extends Dim, R extends number> = LinearConfig<I, O> & AdapterOptions<R>;

export const loraLinear = {
  /** A new base layer (nn.linear's init) with a fresh adapter on it. */
  init<const I extends Dim, const O extends Dim, const R extends number>(key: Key, cfg: AdapterLinearConfig<I, O, R>): LoraParams<I, O, R> {
    const [kb, ka] = splitKey(key, 2);
    return loraLinear.wrap(ka, linear.init(kb, cfg), cfg) as never;
  },
  /** A fresh adapter on existing base weights (which stay the same tensors). */
  wrap<I extends Dim, O extends Dim, D extends FloatDType, const R extends number>(key: Key, base: LinearParams<I, O, D>, opts: AdapterOptions<R>): LoraParams<I, O, R, D> {
    checkOptions("loraLinear.wrap", opts);
    const [out, inDim] = resolveShape("loraLinear.wrap", base.w.shape) as [number, number];
    return { ...base, ...initFactors(key, out, inDim, opts.rank) } as never;
  },
  /** x·Wᵀ + b + s·(x'·Aᵀ)·Bᵀ over the last axis of x. */
  apply<I extends Dim, O extends Dim, R extends Dim, D extends FloatDType, S extends Shape>(
    p: LoraParams<I, O, R, D>,
    x: Tensor<S, D> & Check<MatMul<S, [I, O]>, "loraLinear">,
    opts: AdapterOptions,
    run: ApplyOptions = {},
  ): Tensor<Ok<MatMul<S, [I, O]>>, D> {
    layerDims("loraLinear.apply", p as never, opts);
    const xd = adapterInput("loraLinear.apply", wide(x), opts, run);
    const lora = xd.matmul(wide(p.loraA).mT()).matmul(wide(p.loraB).mT());
    return baseOutput(p as never, wide(x)).add(lora.mul(adapterScale(opts))) as never;
  },
  /** The plain linear layer W + s·B·A (and b) that computes the same function without dropout. */
  merge<I extends Dim, O extends Dim, R extends Dim, D extends FloatDType>(p: LoraParams<I, O, R, D>, opts: AdapterOptions): LinearParams<I, O, D> {
    return mergeLora(p, opts);
  },
};

/** `{ w: W + s·B·A, b }`: the LoRA layer folded into a plain linear layer. */
export function mergeLora<I extends Dim, O extends Dim, R extends Dim, D extends FloatDType>(p: LoraParams<I, O, R, D>, opts: AdapterOptions): LinearParams<I, O, D> {
  layerDims("mergeLora", p as never, opts);
  const w = inDType(asF32(p.w).add(wide(p.loraB).matmul(wide(p.loraA)).mul(adapterScale(opts))), p.w);
  return (p.b ? { w, b: p.b } : { w }) as never;
}
