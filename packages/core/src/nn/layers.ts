// Modules without classes of state: a layer is an `init(key, config) → params` and an
// `apply(params, x, config?)` pair; params are plain pytrees of tensors, so they trace,
// differentiate, serialize and mask like any other tree. Call init inside a trace:
// `evaluate((k) => linear.init(k, { inDim: 16, outDim: 32 }), [randomKey(0)])`.
// Weights follow PyTorch's layout (`w: [out, in]`), which the DoRA layers build on.
import type { Tensor } from "../tensor/tensor.js";
import type { Check, Dim, MatMul, Ok, Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { type AnyTensor, fill, resolveShape } from "../tensor/emit.js";
import { type Key, normal, splitKey, uniform } from "../ops/random.js";
import { embedding as lookup } from "../ops/attention.js";
import { layerNorm as layerNormOp, rmsNorm as rmsNormOp } from "../ops/norms.js";

const T = (x: unknown): AnyTensor => x as AnyTensor;

export interface LinearConfig<I extends Dim = Dim, O extends Dim = Dim> {
  readonly inDim: I;
  readonly outDim: O;
  /** Add a bias (default true). */
  readonly bias?: boolean;
}

export interface LinearParams<I extends Dim = Dim, O extends Dim = Dim, D extends FloatDType = "f32"> {
  readonly w: Tensor<[O, I], D>;
  readonly b?: Tensor<[O], D>;
}

/** `x · wᵀ + b` over the last axis of `x`. */
export const linear = {
  /** Weights and bias uniform in ±1/√in (PyTorch's default). */
  init<const I extends Dim, const O extends Dim>(key: Key, cfg: LinearConfig<I, O>): LinearParams<I, O> {
    const [kw, kb] = splitKey(key, 2);
    const [i, o] = resolveShape("linear.init", [cfg.inDim, cfg.outDim]) as [number, number];
    const bound = 1 / Math.sqrt(i);
    const w = uniform(kw, [o, i], { low: -bound, high: bound });
    if (cfg.bias === false) return { w } as never;
    return { w, b: uniform(kb, [o], { low: -bound, high: bound }) } as never;
  },
  apply<I extends Dim, O extends Dim, D extends FloatDType, S extends Shape>(
    p: LinearParams<I, O, D>,
    x: Tensor<S, D> & Check<MatMul<S, [I, O]>, "linear">,
  ): Tensor<Ok<MatMul<S, [I, O]>>, D> {
    const y = T(x).matmul(T(p.w).mT() as never) as AnyTensor;
    return (p.b ? y.add(T(p.b) as never) : y) as never;
  },
};

export interface EmbeddingConfig<V extends Dim = Dim, E extends Dim = Dim> {
  readonly vocab: V;
  readonly dim: E;
  /** Standard deviation of the initial table (default 0.02, as GPT-2). */
  readonly std?: number;
}

export interface EmbeddingParams<V extends Dim = Dim, E extends Dim = Dim, D extends FloatDType = "f32"> {
  readonly table: Tensor<[V, E], D>;
}

/** A lookup table of `vocab` vectors of size `dim`. */
export const embedding = {
  init<const V extends Dim, const E extends Dim>(key: Key, cfg: EmbeddingConfig<V, E>): EmbeddingParams<V, E> {
    const [v, e] = resolveShape("embedding.init", [cfg.vocab, cfg.dim]);
    return { table: normal(key, [v!, e!], { std: cfg.std ?? 0.02 }) } as never;
  },
  apply<V extends Dim, E extends Dim, D extends FloatDType, I extends Shape>(p: EmbeddingParams<V, E, D>, ids: Tensor<I, "i32">): Tensor<[...I, E], D> {
    return lookup(p.table, ids);
  },
};

export interface NormConfig<E extends Dim = Dim> {
  readonly dim: E;
  readonly eps?: number;
}

export interface LayerNormParams<E extends Dim = Dim, D extends FloatDType = "f32"> {
  readonly gamma: Tensor<[E], D>;
  readonly beta: Tensor<[E], D>;
}

export interface RmsNormParams<E extends Dim = Dim, D extends FloatDType = "f32"> {
  readonly gamma: Tensor<[E], D>;
}

type LastIs<S extends Shape, E extends Dim> = S extends readonly [...Shape, E] ? unknown : Dim extends E ? unknown : { readonly __shapeError: "norm: the last axis of x must be the norm's dim" };

/** Layer normalization over the last axis with a learned scale (ones) and shift (zeros). */
export const layerNorm = {
  init<const E extends Dim>(_key: Key | null, cfg: NormConfig<E>): LayerNormParams<E> {
    const [e] = resolveShape("layerNorm.init", [cfg.dim]);
    return { gamma: fill([e!], 1, "f32"), beta: fill([e!], 0, "f32") } as never;
  },
  apply<E extends Dim, D extends FloatDType, S extends Shape>(p: LayerNormParams<E, D>, x: Tensor<S, D> & LastIs<S, E>, cfg?: { readonly eps?: number }): Tensor<S, D> {
    return layerNormOp(x as Tensor<S, D>, p.gamma as never, p.beta as never, cfg?.eps);
  },
};

/** RMS normalization over the last axis with a learned scale (ones). */
export const rmsNorm = {
  init<const E extends Dim>(_key: Key | null, cfg: NormConfig<E>): RmsNormParams<E> {
    const [e] = resolveShape("rmsNorm.init", [cfg.dim]);
    return { gamma: fill([e!], 1, "f32") } as never;
  },
  apply<E extends Dim, D extends FloatDType, S extends Shape>(p: RmsNormParams<E, D>, x: Tensor<S, D> & LastIs<S, E>, cfg?: { readonly eps?: number }): Tensor<S, D> {
    return rmsNormOp(x as Tensor<S, D>, p.gamma as never, cfg?.eps);
  },
};
