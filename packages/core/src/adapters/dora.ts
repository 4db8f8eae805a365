// DoRA on a linear layer, exactly as DESIGN.md ("DoRA, precisely") and Hugging Face PEFT:
//   V = W + s·B·A,  n = ‖V‖ per output row,  g = m / n,
//   y = x·Wᵀ + b + (g − 1) ⊙ (x'·Wᵀ) + g ⊙ (s · (x'·Aᵀ)·Bᵀ)       (x' = dropout(x))
// The norm is factored so B·A (out × in) is never built, forward or backward:
//   n² = ‖W‖²_row + 2s·rowsum((W·Aᵀ) ⊙ B) + s²·rowsum((B·(A·Aᵀ)) ⊙ B)
// then clamped at 0 (rounding can take the sum of the three terms just below zero when the
// adapter cancels a row) and guarded: n = √(n² + ε). With detachNorm (the default) n is a
// constant in the backward. The compiler's DoRA rewrite matches these nodes.
import type { Tensor } from "../tensor/tensor.js";
import type { Check, Dim, MatMul, Ok, Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { resolveShape } from "../tensor/emit.js";
import { type Key, splitKey } from "../ops/random.js";
import { stopGradient } from "../grad/custom.js";
import { linear, type LinearParams } from "../nn/layers.js";
import { type AdapterOptions, type ApplyOptions, DORA_NORM_EPS, adapterInput, adapterScale, checkOptions, AdapterError } from "./config.js";
import { type AdapterLinearConfig, type LoraParams, type Wide, asF32, inDType, initFactors, layerDims, wide } from "./lora.js";

export interface DoraParams<I extends Dim = Dim, O extends Dim = Dim, R extends Dim = Dim, D extends FloatDType = "f32"> extends LoraParams<I, O, R, D> {
  /** Magnitude m: (out,), PEFT `lora_magnitude_vector`. */
  readonly m: Tensor<[O], D>;
}

/**
 * ‖V‖² per row of V = W + s·B·A from ‖W‖²_row and W·Aᵀ (rows × r), without building B·A:
 * n² = ‖W‖²_row + 2s·rowsum((W·Aᵀ) ⊙ B) + s²·rowsum((B·(A·Aᵀ)) ⊙ B).
 */
export function factoredNormSquared(wNorm2: Wide, wAt: Wide, a: Wide, b: Wide, s: number): Wide {
  const cross = wAt.mul(b).sum(1);
  const quad = b.matmul(a.matmul(a.mT())).mul(b).sum(1);
  return wNorm2.add(cross.mul(2 * s)).add(quad.mul(s * s));
}

/** n = √(max(n², 0) + ε): the guarded row norm from its square. */
export function guardedNorm(n2: Wide): Wide {
  return n2.maximum(0).add(DORA_NORM_EPS).sqrt();
}

/** g = m / n for the row norms n, detached unless `detachNorm` is false. */
export function magnitudeScale(m: Wide, n: Wide, opts: AdapterOptions): Wide {
  return m.div(opts.detachNorm === false ? n : stopGradient(n));
}

/** g for a linear layer: W (out, in), A (r, in), B (out, r), m (out). */
export function linearScale(w: Wide, a: Wide, b: Wide, m: Wide, opts: AdapterOptions): Wide {
  const n2 = factoredNormSquared(w.square().sum(1), w.matmul(a.mT()), a, b, adapterScale(opts));
  return magnitudeScale(m, guardedNorm(n2), opts);
}

/**
 * (g − 1) ⊙ base + g ⊙ (s · lora): the DoRA term added to the base output. Written in this
 * order because g is close to 1, so the small correction keeps its precision.
 */
export function doraDelta(g: Wide, base: Wide, lora: Wide, s: number): Wide {
  return g.sub(1).mul(base).add(g.mul(lora.mul(s)));
}

/**
 * m's initial value: the guarded row norms of W, so a fresh adapter has g = 1 exactly. In f32
 * whatever W's dtype: adapters train in f32 over a base that may be stored in f16.
 */
export function initialMagnitude(w: Wide): Wide {
  return guardedNorm(asF32(w).square().sum(1));
}

export const doraLinear = {
  /** A new base layer (nn.linear's init) with a fresh DoRA adapter on it. */
  init<const I extends Dim, const O extends Dim, const R extends number>(key: Key, cfg: AdapterLinearConfig<I, O, R>): DoraParams<I, O, R> {
    const [kb, ka] = splitKey(key, 2);
    return doraLinear.wrap(ka, linear.init(kb, cfg), cfg) as never;
  },
  /**
   * A fresh adapter on existing base weights: A Kaiming-uniform, B zero, m the row norms of
   * W (guarded as in the forward: √(‖W‖² + ε), within ε/2‖W‖ of PEFT's ‖W‖), so the layer
   * reproduces the base layer bit for bit.
   */
  wrap<I extends Dim, O extends Dim, D extends FloatDType, const R extends number>(key: Key, base: LinearParams<I, O, D>, opts: AdapterOptions<R>): DoraParams<I, O, R, D> {
    checkOptions("doraLinear.wrap", opts);
    const [out, inDim] = resolveShape("doraLinear.wrap", base.w.shape) as [number, number];
    return { ...base, ...initFactors(key, out, inDim, opts.rank), m: initialMagnitude(wide(base.w)) } as never;
  },
  /** y = x·Wᵀ + b + (g − 1) ⊙ (x'·Wᵀ) + g ⊙ s·(x'·Aᵀ)·Bᵀ over the last axis of x. */
  apply<I extends Dim, O extends Dim, R extends Dim, D extends FloatDType, S extends Shape>(
    p: DoraParams<I, O, R, D>,
    x: Tensor<S, D> & Check<MatMul<S, [I, O]>, "doraLinear">,
    opts: AdapterOptions,
    run: ApplyOptions = {},
  ): Tensor<Ok<MatMul<S, [I, O]>>, D> {
    const [out] = layerDims("doraLinear.apply", p as never, opts);
    checkMagnitude("doraLinear.apply", p.m, out);
    const [w, a, b] = [wide(p.w), wide(p.loraA), wide(p.loraB)];
    const g = linearScale(w, a, b, wide(p.m), opts);
    const xw = wide(x);
    const xd = adapterInput("doraLinear.apply", xw, opts, run);
    const base = xw.matmul(w.mT());
    const dropped = xd === xw ? base : xd.matmul(w.mT());
    const lora = xd.matmul(a.mT()).matmul(b.mT());
    const y = p.b ? base.add(wide(p.b)) : base;
    return y.add(doraDelta(g, dropped, lora, adapterScale(opts))) as never;
  },
  /** The plain linear layer g[:, None] ⊙ (W + s·B·A) (and b), the same function without dropout. */
  merge<I extends Dim, O extends Dim, R extends Dim, D extends FloatDType>(p: DoraParams<I, O, R, D>, opts: AdapterOptions): LinearParams<I, O, D> {
    return mergeDora(p, opts);
  },
};

export function checkMagnitude(where: string, m: { shape: readonly number[] }, rows: number): void {
  if (m.shape.length !== 1 || m.shape[0] !== rows) throw new AdapterError(`${where}: m must be [${rows}] (one magnitude per output row), found [${m.shape.join(",")}]`);
}

/** `{ w: g[:, None] ⊙ (W + s·B·A), b }`: the DoRA layer folded into a plain linear layer (PEFT's merge). */
export function mergeDora<I extends Dim, O extends Dim, R extends Dim, D extends FloatDType>(p: DoraParams<I, O, R, D>, opts: AdapterOptions): LinearParams<I, O, D> {
  const [out] = layerDims("mergeDora", p as never, opts);
  checkMagnitude("mergeDora", p.m, out);
  const [w, a, b] = [asF32(p.w), wide(p.loraA), wide(p.loraB)];
  const g = linearScale(w, a, b, wide(p.m), opts);
  const merged = inDType(w.add(b.matmul(a).mul(adapterScale(opts))).mul(g.expandDims(1)), p.w);
  return (p.b ? { w: merged, b: p.b } : { w: merged }) as never;
}

