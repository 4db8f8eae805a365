// The activations transformers' configs name (ACT2FN), as core's composites.
import { gelu, relu, silu, type Tensor } from "@dorafuse/core";

type T = Tensor<number[], "f32">;
const t = (x: unknown): T => x as T;

/** GELU with the exact erf form (transformers' "gelu"). */
function geluErf(x: Tensor): T {
  return t(x).mul(0.5 as never).mul(t(x).mul(Math.SQRT1_2 as never).erf().add(1 as never) as never) as T;
}

export const ACTIVATIONS = {
  silu: (x: Tensor) => t(silu(t(x))),
  swish: (x: Tensor) => t(silu(t(x))),
  gelu_new: (x: Tensor) => t(gelu(t(x))),
  gelu_pytorch_tanh: (x: Tensor) => t(gelu(t(x))),
  gelu: geluErf,
  relu: (x: Tensor) => t(relu(t(x))),
} as const;

export type ActivationName = keyof typeof ACTIVATIONS;
export const ACTIVATION_NAMES = Object.keys(ACTIVATIONS) as ActivationName[];
