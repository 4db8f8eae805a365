// What the DoRA tests share: a random layer (a trained adapter: B nonzero, m near the row
// norms), the graphs of its forward and of its gradients traced through doraLinear.apply, and
// the comparison of fused GPU results with the float64 interpreter running the composite.
import { doraLinear, interpret, spec, trace, valueAndGrad, type AdapterOptions, type Graph, type Tensor } from "@dorafuse/core";
import { lowerGraph, withDoraConfig, type LoweredGraph, type Target } from "@dorafuse/compiler";
import type { Device } from "@dorafuse/runtime";
import { randomArray, type Rng } from "../../../core/test/support/random.js";
import { relErr } from "../../../core/test/support/numeric.js";
import { roundTo, runLowered } from "./run.js";

export interface DoraCase {
  /** Leading axes of x (batch…): [n] or [b, s]. */
  lead: number[];
  inDim: number;
  out: number;
  rank: number;
  bias?: boolean;
  dropout?: number;
  detach?: boolean;
}

type F = Tensor<number[], "f32">;
export const optsOf = (c: DoraCase): AdapterOptions => ({ rank: c.rank, alpha: c.rank + 1.5, dropout: c.dropout ?? 0, detachNorm: c.detach ?? true });

/** The layer's parameter specs, x, gy (the output's cotangent) and the dropout key. */
export function specsOf(c: DoraCase): unknown[] {
  const p: Record<string, unknown> = { w: spec([c.out, c.inDim]), loraA: spec([c.rank, c.inDim]), loraB: spec([c.out, c.rank]), m: spec([c.out]) };
  if (c.bias ?? true) p.b = spec([c.out]);
  return [p, spec([...c.lead, c.inDim]), spec([...c.lead, c.out]), spec([2], "u32")];
}

const layer = (c: DoraCase) => (p: never, x: F, k: never): F => doraLinear.apply(p, x as never, optsOf(c), (c.dropout ?? 0) > 0 ? { key: k } : {}) as F;

/** y, then the gradients of Σ y⊙gy for A, B, m and x (W and the bias frozen). */
export function gradGraph(c: DoraCase): Graph {
  const f = layer(c);
  return trace((p: never, x: never, gy: never, k: never) => {
    const { loraA, loraB, m, ...frozen } = p as Record<string, F>;
    const loss = (t: Record<string, F>, xx: F) => f({ ...frozen, ...t } as never, xx, k).mul(gy).sum();
    const [, [gt, gx]] = valueAndGrad(loss, { argnums: [0, 1] })({ loraA: loraA!, loraB: loraB!, m: m! }, x);
    const g = gt as Record<string, F>;
    return [f(p, x, k), g.loraA!, g.loraB!, g.m!, gx];
  }, specsOf(c) as never).graph;
}

/** y alone. */
export function forwardGraph(c: DoraCase): Graph {
  const f = layer(c);
  return trace((p: never, x: never, _gy: never, k: never) => f(p, x, k), specsOf(c) as never).graph;
}

/**
 * Random inputs in graph-input order: W with entries away from zero, a small adapter (its
 * update changes each row by a fraction of the row: V stays well-conditioned, as a trained
 * adapter is), m near ‖W‖, x, gy, a key. `zeroRow` zeroes row `zeroRow` of W and B.
 */
export function inputsOf(rng: Rng, g: Graph, c: DoraCase, zeroRow?: number): Float64Array[] {
  const names = g.inputs.map((n) => String(n.attrs.name).split(".").pop()!);
  const values = g.inputs.map((n, k) => {
    const name = names[k]!;
    const size = n.shape.reduce((a, b) => a * b, 1);
    let v: Float64Array;
    if (name === "arg3") v = Float64Array.of(rng.int(0, 2 ** 31), rng.int(0, 2 ** 31));
    else if (name === "w") v = randomArray(rng, size, { minAbs: 0.1 });
    else if (name === "loraA") v = randomArray(rng, size, { lo: -0.5, hi: 0.5 });
    else if (name === "loraB") v = randomArray(rng, size, { lo: -0.5, hi: 0.5 }).map((x) => x / Math.sqrt(c.rank));
    else if (name === "m") v = Float64Array.from({ length: size }, () => Math.sqrt(c.inDim) * rng.uniform(0.4, 0.8));
    else v = randomArray(rng, size);
    if (zeroRow !== undefined && (name === "w" || name === "loraB")) v.fill(0, zeroRow * n.shape[1]!, (zeroRow + 1) * n.shape[1]!);
    return v;
  });
  const [w, a, b] = ["w", "loraA", "loraB"].map((name) => values[names.indexOf(name)]);
  if (w && a && b) boundUpdate(w, a, b, c);
  return values.map((v, k) => (g.inputs[k]!.dtype === "u32" ? v : roundTo("f32", v)));
}

/**
 * Scales rows of B so that each row's update s·(B·A)_o is at most half of ‖W_o‖: then
 * ‖V_o‖ ≥ ½‖W_o‖ and the factored norm's cancellation stays bounded. (With in = 1 an
 * unbounded update can cancel its row, where float32 and float64 rightly disagree.)
 */
function boundUpdate(w: Float64Array, a: Float64Array, b: Float64Array, c: DoraCase): void {
  const s = optsOf(c).alpha / c.rank;
  for (let o = 0; o < c.out; o++) {
    let wn = 0;
    let un = 0;
    for (let k = 0; k < c.inDim; k++) {
      let u = 0;
      for (let l = 0; l < c.rank; l++) u += b[o * c.rank + l]! * a[l * c.inDim + k]!;
      wn += w[o * c.inDim + k]! ** 2;
      un += (s * u) ** 2;
    }
    const ratio = Math.sqrt(un / wn);
    if (ratio > 0.5) for (let l = 0; l < c.rank; l++) b[o * c.rank + l]! *= 0.5 / ratio;
  }
}

/** Lowers `g` with the DoRA rewrite and the given forward schedule. */
export function lowerDora(g: Graph, target: Target, schedule: "single" | "split" | "auto" = "auto"): LoweredGraph {
  return withDoraConfig({ schedule }, () => lowerGraph(g, { target }));
}

/** The graph as written (no DoRA rewrite), in float64: the oracle. */
export function composite(c: DoraCase, grads: boolean, detach = c.detach ?? true): Graph {
  const cc = { ...c, detach };
  return withDoraConfig({ enabled: false }, () => (grads ? gradGraph(cc) : forwardGraph(cc)));
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

/**
 * Compares each output with the float64 reference. Gradients whose terms cancel (the norm's
 * term against the rest, with the norm differentiated) are compared relative to `scale` —
 * the same gradient with the norm detached — when that is larger than their own norm.
 */
export function expectOutputs(got: readonly Float64Array[], want: readonly Float64Array[], scale: readonly Float64Array[] | undefined, tol: number, what: string): void {
  const names = ["y", "dA", "dB", "dm", "dx"];
  want.forEach((w, k) => {
    const g = got[k]!;
    if (!g.every(Number.isFinite)) throw new Error(`${what}: ${names[k]} has non-finite values`);
    const err = norm(g.map((v, i) => v - w[i]!));
    const ref = Math.max(norm(w), scale ? norm(scale[k]!) : 0);
    if (!(err <= tol * ref)) throw new Error(`${what}: ${names[k] ?? `output ${k}`} differs from float64 by ${(err / ref).toExponential(3)} (relative error ${relErr(g, w).toExponential(3)}; tolerance ${tol})`);
  });
}

/** Runs the fused plan on the GPU and returns its outputs with the float64 reference (and the detached one). */
export async function runAgainstReference(device: Device, target: Target, rng: Rng, c: DoraCase, schedule: "single" | "split" | "auto", zeroRow?: number) {
  const g = gradGraph(c);
  const inputs = inputsOf(rng, g, c, zeroRow);
  const lowered = lowerDora(g, target, schedule);
  const got = await runLowered(device, lowered, inputs);
  const want = interpret(composite(c, true), inputs);
  const detached = c.detach === false ? interpret(composite(c, true, true), inputs) : undefined;
  return { lowered, got, want, detached, inputs };
}
