// Gradient clipping by global norm (optax.clip_by_global_norm, PyTorch's clip_grad_norm_
// without its epsilon): when ‖g‖ = √(Σ over all leaves of Σ g²) exceeds maxNorm, every
// leaf is scaled by maxNorm / ‖g‖. The factor is written maxNorm / max(‖g‖, maxNorm), which
// is exactly 1 below the threshold and never divides by zero.
import type { Tensor } from "../tensor/tensor.js";
import type { Dim } from "../tensor/shape-types.js";
import { scalar } from "../tensor/create.js";
import { flatten, unflatten } from "../trace/pytree.js";
import { isTensor } from "../trace/values.js";
import { OptimizerError } from "./errors.js";

type Wide = Tensor<Dim[], "f32">;
type F = Tensor<[], "f32">;
const isSlot = (v: unknown): v is Wide | null => isTensor(v) || v === null;

/** √(Σ g²) over the chosen leaves, accumulated in f32. */
function normOf(leaves: readonly (Wide | null)[], use: readonly boolean[]): F {
  let total: F = scalar(0);
  leaves.forEach((g, i) => {
    if (!g || !use[i]) return;
    const g32 = g.dtype === "f32" ? g : (g.cast("f32") as Wide);
    total = total.add(g32.square().sum()) as F;
  });
  return total.sqrt();
}

/** The leaves with `use` scaled so their global norm is at most maxNorm (others as they are). */
export function scaleByGlobalNorm(leaves: readonly (Wide | null)[], use: readonly boolean[], maxNorm: number): (Wide | null)[] {
  const factor = scalar(maxNorm).div(normOf(leaves, use).maximum(maxNorm));
  return leaves.map((g, i) => (g && use[i] ? g.mul(g.dtype === "f32" ? factor : factor.cast(g.dtype)) : g));
}

/** The global L2 norm of a gradient tree (null leaves skipped). */
export function globalNorm(grads: unknown): Tensor<[], "f32"> {
  const [leaves] = flatten(grads, isSlot);
  return normOf(leaves, leaves.map(() => true));
}

/** The gradient tree scaled so its global norm is at most `maxNorm`, and the norm before. */
export function clipByGlobalNorm<G>(grads: G, maxNorm: number): { grads: G; norm: Tensor<[], "f32"> } {
  if (!(maxNorm > 0)) throw new OptimizerError(`clipByGlobalNorm: maxNorm must be positive, found ${maxNorm}`);
  const [leaves, def] = flatten(grads, isSlot);
  const use = leaves.map(() => true);
  return { grads: unflatten<G>(def, scaleByGlobalNorm(leaves, use, maxNorm)), norm: normOf(leaves, use) };
}
