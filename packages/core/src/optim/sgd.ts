// Stochastic gradient descent with momentum and Nesterov momentum, as PyTorch's torch.optim.SGD
// (dampening 0): with g ← g + weightDecay·p (L2, coupled),
//   buf ← momentum·buf + g;   u = nesterov ? g + momentum·buf : buf;   p ← p − lr·u
// and without momentum simply p ← p − lr·g. The buffer starts at zero, so the first step's
// buf is g, as PyTorch's.
import { OptimizerError } from "./errors.js";
import { type CommonOptions, type Optimizer, type Rule, makeOptimizer } from "./optimizer.js";

export interface SgdOptions extends CommonOptions {
  /** Momentum coefficient in [0, 1) (default 0: plain SGD, no state). */
  readonly momentum?: number;
  /** Nesterov momentum (needs momentum > 0). */
  readonly nesterov?: boolean;
  /** L2 penalty added to the gradient (default 0). */
  readonly weightDecay?: number;
}

export function sgd(opts: SgdOptions): Optimizer {
  const mu = opts.momentum ?? 0;
  const wd = opts.weightDecay ?? 0;
  if (!(mu >= 0 && mu < 1)) throw new OptimizerError(`sgd: momentum must be in [0, 1), found ${mu}`);
  if (opts.nesterov && mu === 0) throw new OptimizerError("sgd: nesterov needs momentum > 0");
  if (!(wd >= 0)) throw new OptimizerError(`sgd: weightDecay must be non-negative, found ${wd}`);
  const slots = mu > 0 ? ["momentum"] : [];
  const rule: Rule = ({ param, grad, slots: s, lr }): ReturnType<Rule> => {
    const g = wd ? grad.add(param.mul(wd)) : grad;
    if (mu === 0) return { param: param.sub(g.mul(lr)), slots: {} };
    const buf = s.momentum!.mul(mu).add(g);
    const u = opts.nesterov ? g.add(buf.mul(mu)) : buf;
    return { param: param.sub(u.mul(lr)), slots: { momentum: buf } };
  };
  return makeOptimizer("sgd", opts, slots, () => rule);
}
