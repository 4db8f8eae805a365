// Normalizations over the last axis, in primitives.
import type { Tensor } from "../tensor/tensor.js";
import type { Dim, Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";

type F = Tensor<Shape, FloatDType>;
const f = (x: unknown): F => x as F;

/** The last dimension of a shape type. */
export type Last<S extends Shape> = S extends readonly [...Shape, infer L extends Dim] ? L : Dim;

/** A scale or shift over the last axis must broadcast against `x`. */
type Affine<S extends Shape, D extends FloatDType> = Tensor<[Last<S>], D>;

/**
 * (x − mean) / √(var + eps) over the last axis, then `· gamma + beta` when given (biased
 * variance, as PyTorch's LayerNorm).
 */
export function layerNorm<S extends Shape, D extends FloatDType>(
  x: Tensor<S, D>,
  gamma?: Affine<S, D> | null,
  beta?: Affine<S, D> | null,
  eps = 1e-5,
): Tensor<S, D> {
  const v = f(x);
  const c = v.sub(v.mean(-1, true));
  let y = c.mul(c.mul(c).mean(-1, true).add(eps).rsqrt());
  if (gamma) y = y.mul(f(gamma));
  if (beta) y = y.add(f(beta));
  return y as never;
}

/** x / √(mean(x²) + eps) over the last axis, times `gamma` when given (as LLaMA's RMSNorm). */
export function rmsNorm<S extends Shape, D extends FloatDType>(x: Tensor<S, D>, gamma?: Affine<S, D> | null, eps = 1e-6): Tensor<S, D> {
  const v = f(x);
  const y = v.mul(v.mul(v).mean(-1, true).add(eps).rsqrt());
  return (gamma ? y.mul(f(gamma)) : y) as never;
}
