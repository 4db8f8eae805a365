// Activations and the softmax family, written in primitives (composites, not primitives:
// autodiff goes through their parts, the compiler fuses them back together).
import type { Tensor } from "../tensor/tensor.js";
import type { Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { stopGradient } from "../grad/custom.js";

/** The untyped view composites compute in; their signatures carry the types. */
type F = Tensor<Shape, FloatDType>;
const f = (x: unknown): F => x as F;

/** 1 / (1 + e^-x), computed as ½·(1 + tanh(x/2)): no overflow for large |x|. */
export function sigmoid<S extends Shape, D extends FloatDType>(x: Tensor<S, D>): Tensor<S, D> {
  return f(x).mul(0.5).tanh().add(1).mul(0.5) as never;
}

/** x · sigmoid(x) (a.k.a. swish). */
export function silu<S extends Shape, D extends FloatDType>(x: Tensor<S, D>): Tensor<S, D> {
  return f(x).mul(f(sigmoid(x))) as never;
}

/** max(x, 0) */
export function relu<S extends Shape, D extends FloatDType>(x: Tensor<S, D>): Tensor<S, D> {
  return f(x).maximum(0) as never;
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GELU, tanh approximation (GPT-2, PyTorch `approximate="tanh"`): ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function gelu<S extends Shape, D extends FloatDType>(x: Tensor<S, D>): Tensor<S, D> {
  const v = f(x);
  const inner = v.add(v.mul(v).mul(v).mul(0.044715)).mul(GELU_C);
  return v.mul(0.5).mul(inner.tanh().add(1)) as never;
}

// The max subtracted for stability is a constant shift: softmax does not depend on it, so its
// gradient is exactly zero and stopGradient only saves the backward work of reduceMax.
const shift = (x: F, axis: number): F => stopGradient(x.max(axis, true));

/** log Σ exp(x) over `axis` (kept as size 1 when `keepDims`). */
export function logSumExp<S extends Shape, D extends FloatDType>(x: Tensor<S, D>, axis = -1, keepDims = false): Tensor<Shape, D> {
  const v = f(x);
  const m = shift(v, axis);
  const lse = v.sub(m).exp().sum(axis, true).log().add(m);
  return (keepDims ? lse : lse.squeeze(axis)) as never;
}

/** e^x / Σ e^x over `axis` (default the last). */
export function softmax<S extends Shape, D extends FloatDType>(x: Tensor<S, D>, axis = -1): Tensor<S, D> {
  const v = f(x);
  const e = v.sub(shift(v, axis)).exp();
  return e.div(e.sum(axis, true)) as never;
}

/** x − log Σ e^x over `axis` (default the last). */
export function logSoftmax<S extends Shape, D extends FloatDType>(x: Tensor<S, D>, axis = -1): Tensor<S, D> {
  const v = f(x);
  const z = v.sub(shift(v, axis));
  return z.sub(z.exp().sum(axis, true).log()) as never;
}
