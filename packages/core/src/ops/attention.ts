// Scaled dot-product attention and the multi-head layout around it, in primitives, plus the
// embedding lookup.
import type { Tensor } from "../tensor/tensor.js";
import type { Dim, Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { type AnyTensor, emit, fill, fmtT, shapeError } from "../tensor/emit.js";
import { gather } from "../tensor/layout.js";
import { softmax } from "./activations.js";

type F = Tensor<Shape, FloatDType>;
const f = (x: unknown): F => x as F;
const T = (x: unknown): AnyTensor => x as AnyTensor;

// A finite "minus infinity" for masked scores: exp() of it is 0 in f32, and it survives f16.
const MASKED = { f32: -1e9, f16: -6e4 } as const;

export interface AttentionOptions {
  /** Each query attends only to keys at or before its own position. */
  readonly causal?: boolean;
  /** Scale of the scores (default 1/√headDim). */
  readonly scale?: number;
}

/**
 * softmax(q·kᵀ·scale [+ causal mask]) · v over `q [..., Tq, Dh]`, `k [..., Tk, Dh]`,
 * `v [..., Tk, Dv]` (any leading batch/head dimensions, broadcast).
 */
export function attention<Q extends Shape, K extends Shape, V extends Shape, D extends FloatDType>(
  q: Tensor<Q, D>,
  k: Tensor<K, D>,
  v: Tensor<V, D>,
  opts: AttentionOptions = {},
): Tensor<Shape, D> {
  const qt = f(q);
  const dh = qt.shape[qt.rank - 1]!;
  let scores = qt.matmul(f(k).mT() as never).mul(opts.scale ?? 1 / Math.sqrt(dh)) as F;
  if (opts.causal) {
    const [tq, tk] = scores.shape.slice(-2) as [number, number];
    const shape = [tq, tk];
    // query i sees key j when j ≤ i + (tk − tq): the queries are the last tq positions
    const row = emit("iota", [], { shape, axis: 0, dtype: "i32" });
    const col = emit("iota", [], { shape, axis: 1, dtype: "i32" });
    const visible = T(col).le(T(row).add(tk - tq) as never);
    const masked = fill(scores.shape, MASKED[scores.dtype], scores.dtype);
    scores = f(emit("where", [emit("broadcast", [visible], { shape: [...scores.shape] }), T(scores), masked]));
  }
  return f(softmax(scores)).matmul(f(v) as never) as never;
}

/** `[B, T, H·Dh]` → `[B, H, T, Dh]`. */
export function splitHeads<B extends Dim, S extends Dim, D extends FloatDType>(x: Tensor<[B, S, Dim], D>, heads: number): Tensor<[B, number, S, number], D> {
  const t = T(x);
  const [b, s, d] = t.shape as [number, number, number];
  if (t.rank !== 3 || d % heads !== 0) shapeError("splitHeads", `needs [batch, seq, heads·headDim] with ${heads} heads, found ${fmtT(t)}`);
  return f(x).reshape([b, s, heads, d / heads]).transpose([0, 2, 1, 3]) as never;
}

/** `[B, H, T, Dh]` → `[B, T, H·Dh]`. */
export function mergeHeads<B extends Dim, S extends Dim, D extends FloatDType>(x: Tensor<[B, number, S, number], D>): Tensor<[B, S, number], D> {
  const t = T(x);
  const [b, h, s, dh] = t.shape as [number, number, number, number];
  return f(x).transpose([0, 2, 1, 3]).reshape([b, s, h * dh]) as never;
}

/** Causal (or not) multi-head attention on `[B, T, H·Dh]` queries, keys and values. */
export function multiHeadAttention<B extends Dim, S extends Dim, E extends Dim, D extends FloatDType>(
  q: Tensor<[B, S, E], D>,
  k: Tensor<[B, S, E], D>,
  v: Tensor<[B, S, E], D>,
  heads: number,
  opts: AttentionOptions = {},
): Tensor<[B, S, E], D> {
  const o = attention(splitHeads(q, heads), splitHeads(k, heads), splitHeads(v, heads), opts);
  return mergeHeads(o as never) as never;
}

/** Rows of `table [vocab, dim]` for integer `ids [...]`: `[..., dim]`. */
export function embedding<V extends Dim, E extends Dim, I extends Shape, D extends FloatDType>(
  table: Tensor<[V, E], D>,
  ids: Tensor<I, "i32">,
): Tensor<[...I, E], D> {
  return gather(T(table), T(ids), 0) as never;
}
