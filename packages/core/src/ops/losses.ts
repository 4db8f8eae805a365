// Losses over logits, in primitives.
import type { Tensor } from "../tensor/tensor.js";
import type { Dim, Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { type AnyTensor, emit, shapeError, fmtT } from "../tensor/emit.js";
import { logSoftmax } from "./activations.js";

type F = Tensor<Shape, FloatDType>;
const f = (x: unknown): F => x as F;
const T = (x: unknown): AnyTensor => x as AnyTensor;

/** The leading dimensions of a shape type (all but the last). */
export type Init<S extends Shape> = S extends readonly [...infer I extends Dim[], Dim] ? I : Dim[];

export interface CrossEntropyOptions {
  /** Labels equal to this contribute nothing and are not counted in the mean (default -100, as PyTorch). */
  readonly ignoreIndex?: number;
  /** "mean" over the counted labels (default), "sum", or "none" (per position, 0 where ignored). */
  readonly reduction?: "mean" | "sum" | "none";
}

/**
 * Cross-entropy of `logits [..., classes]` against integer `labels [...]`. The picked
 * log-probability comes from a one-hot mask (iota == label), which fuses with the softmax.
 */
export function crossEntropy<S extends Shape, D extends FloatDType, R extends "mean" | "sum" | "none" = "mean">(
  logits: Tensor<S, D>,
  labels: Tensor<Init<S>, "i32">,
  opts: CrossEntropyOptions & { readonly reduction?: R } = {},
): Tensor<R extends "none" ? Init<S> : [], D> {
  const x = f(logits);
  const y = T(labels);
  if (y.rank !== x.rank - 1 || !y.shape.every((d, i) => d === x.shape[i])) {
    shapeError("crossEntropy", `labels must have the logits' shape without the class axis: logits ${fmtT(T(x))}, labels ${fmtT(y)}`);
  }
  const logp = f(logSoftmax(x));
  const iota = emit("iota", [], { shape: [...x.shape], axis: x.rank - 1, dtype: "i32" });
  const onehot = f(emit("cast", [emit("eq", [iota, emit("broadcast", [emit("reshape", [y], { shape: [...y.shape, 1] })], { shape: [...x.shape] })])], { dtype: x.dtype }));
  const picked = logp.mul(onehot).sum(-1);
  const ignore = opts.ignoreIndex ?? -100;
  const valid = f(emit("cast", [T(y).ne(ignore as never)], { dtype: x.dtype }));
  const losses = picked.neg().mul(valid);
  const reduction = opts.reduction ?? "mean";
  if (reduction === "none") return losses as never;
  const total = losses.sum();
  if (reduction === "sum") return total as never;
  // mean over counted labels; an all-ignored batch gives 0 rather than 0/0
  return total.div(valid.sum().maximum(1)) as never;
}

/** Mean squared error. */
export function mse<S extends Shape, D extends FloatDType>(pred: Tensor<S, D>, target: Tensor<S, D>): Tensor<[], D> {
  const d = f(pred).sub(f(target));
  return d.mul(d).mean() as never;
}
