// Adam and AdamW with bias correction, as PyTorch (torch.optim.Adam / AdamW) and optax:
//   mu ← β1·mu + (1 − β1)·g;   nu ← β2·nu + (1 − β2)·g²
//   u = (mu / (1 − β1^t)) / (√(nu / (1 − β2^t)) + ε)            (t = 1, 2, …)
//   Adam:  p ← p − lr·u
//   AdamW: p ← p·(1 − lr·λ) − lr·u   (decoupled weight decay λ, on the leaves decayMask picks)
import type { Mask } from "../grad/grad.js";
import { scalar } from "../tensor/create.js";
import { OptimizerError } from "./errors.js";
import { type CommonOptions, type Optimizer, type Rule, type Wide, leafNames, leafPredicate, makeOptimizer } from "./optimizer.js";

export interface AdamOptions extends CommonOptions {
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
}

export interface AdamWOptions extends AdamOptions {
  /** Decoupled weight decay λ (default 0.01, as PyTorch's AdamW). */
  readonly weightDecay?: number;
  /**
   * Which trainable leaves decay: a mask (prefix tree of booleans, keys left out do not decay)
   * or a predicate of the leaf's dotted path (`(p) => !p.endsWith(".b")`). Default: all.
   */
  readonly decayMask?: Mask | ((path: string) => boolean);
}

interface Betas {
  readonly b1: number;
  readonly b2: number;
  readonly eps: number;
}

function betas(name: string, o: AdamOptions): Betas {
  const b = { b1: o.beta1 ?? 0.9, b2: o.beta2 ?? 0.999, eps: o.eps ?? 1e-8 };
  for (const [k, v] of [["beta1", b.b1], ["beta2", b.b2]] as const) {
    if (!(v >= 0 && v < 1)) throw new OptimizerError(`${name}: ${k} must be in [0, 1), found ${v}`);
  }
  if (!(b.eps >= 0)) throw new OptimizerError(`${name}: eps must be non-negative, found ${b.eps}`);
  return b;
}

function adamRule({ b1, b2, eps }: Betas, decay: (path: string) => number): Rule {
  return ({ param, grad, slots, lr, t, path }) => {
    const mu = slots.mu!.mul(b1).add(grad.mul(1 - b1));
    const nu = slots.nu!.mul(b2).add(grad.square().mul(1 - b2));
    const bc1 = scalar(1).sub(scalar(b1).pow(t));
    const bc2 = scalar(1).sub(scalar(b2).pow(t));
    const cast = (x: typeof bc1): Wide => (param.dtype === "f32" ? x : x.cast(param.dtype)) as Wide;
    const u = mu.div(cast(bc1)).div(nu.div(cast(bc2)).sqrt().add(eps));
    const wd = decay(path);
    const kept = wd ? param.mul(lr.mul(-wd).add(1)) : param;
    return { param: kept.sub(u.mul(lr)), slots: { mu, nu } };
  };
}

/** Adam (no weight decay; use adamw for decoupled decay). */
export function adam(opts: AdamOptions): Optimizer {
  const rule = adamRule(betas("adam", opts), () => 0);
  return makeOptimizer("adam", opts, ["mu", "nu"], () => rule);
}

/** AdamW: Adam with decoupled weight decay. */
export function adamw(opts: AdamWOptions): Optimizer {
  const wd = opts.weightDecay ?? 0.01;
  if (!(wd >= 0)) throw new OptimizerError(`adamw: weightDecay must be non-negative, found ${wd}`);
  const b = betas("adamw", opts);
  return makeOptimizer("adamw", opts, ["mu", "nu"], (def) => {
    const names = leafNames(def);
    const on = leafPredicate(def, opts.decayMask);
    const decays = new Map(names.map((n, i) => [n, on[i] ? wd : 0]));
    return adamRule(b, (path) => decays.get(path) ?? 0);
  });
}
