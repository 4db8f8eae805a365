// grad, valueAndGrad and vjp over pytrees, as graph transforms: the function is traced into
// its own graph (nested in the running trace), differentiated by the engine's vjpGraph, and
// the gradient graph is inlined back. Because the result is ordinary nodes of the outer
// trace, grad(grad(f)) is grad of a function that happens to contain a gradient.
import { buildGraph } from "../ir/builder.js";
import type { Graph } from "../ir/node.js";
import { isFloat } from "../ir/dtype.js";
import { vjpOfPrimal } from "../autodiff/vjp.js";
import { applyPrimalRewrites } from "../autodiff/rewrites.js";
import { TraceError } from "../errors.js";
import { type AnyTensor, fill, fmtT } from "../tensor/emit.js";
import type { Tensor } from "../tensor/tensor.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { currentContext } from "../trace/context.js";
import { flatten, leafCount, maskLeaves, unflatten, type TreeDef } from "../trace/pytree.js";
import { inlineHere, nestedArgs, traceNested } from "../trace/nested.js";
import { argPaths } from "../trace/trace.js";
import { isTensor } from "../trace/values.js";

// ---- types ------------------------------------------------------------------------------

/** The gradient tree of a tree: float tensors keep their type, other tensors give null. */
export type GradsOf<T> = T extends Tensor<infer S, infer D>
  ? D extends FloatDType
    ? Tensor<S, D>
    : null
  : T extends readonly unknown[]
    ? { -readonly [K in keyof T]: GradsOf<T[K]> }
    : T extends object
      ? { [K in keyof T]: GradsOf<T[K]> }
      : T;

/** A tree with every tensor replaced by null (frozen parts of a gradient). */
export type NullsOf<T> = T extends Tensor
  ? null
  : T extends readonly unknown[]
    ? { -readonly [K in keyof T]: NullsOf<T[K]> }
    : T extends object
      ? { [K in keyof T]: NullsOf<T[K]> }
      : T;

/** A mask prefix tree: `true` trains a whole sub-tree, `false` (or a missing key) freezes it. */
export type Mask = boolean | readonly Mask[] | { readonly [k: string]: Mask };

/** The gradient of `T` under mask `M`: frozen leaves are null. */
export type MaskedGrads<T, M> = M extends true
  ? GradsOf<T>
  : M extends false
    ? NullsOf<T>
    : T extends readonly unknown[]
      ? { -readonly [K in keyof T]: K extends keyof M ? MaskedGrads<T[K], M[K]> : NullsOf<T[K]> }
      : T extends object
        ? { [K in keyof T]: K extends keyof M ? MaskedGrads<T[K], M[K]> : NullsOf<T[K]> }
        : T;

type Argnums = number | readonly number[];

/** Gradients for `argnums` of parameters `P`: one tree, or a tuple of trees for a list. */
export type GradResult<P extends readonly unknown[], N extends Argnums, M> = N extends number
  ? MaskedGrads<P[N], M>
  : { -readonly [K in keyof N]: N[K] extends number ? GradsOf<P[N[K]]> : never };

export interface GradOptions<N extends Argnums = 0, M extends Mask = true> {
  /** Which arguments to differentiate (default 0); a list gives a tuple of gradient trees. */
  readonly argnums?: N;
  /**
   * A mask over the (single) differentiated argument: a prefix tree of booleans; keys left out
   * are frozen. Frozen leaves get no gradient (null), and none is computed for them.
   */
  readonly trainable?: M;
  /** `f` returns `[loss, aux]`; only the loss is differentiated, aux is returned as is. */
  readonly hasAux?: boolean;
}

type AnyFn = (...args: any[]) => unknown;

// ---- transforms -------------------------------------------------------------------------

/** Which leaves of the argument list to differentiate, and where each argument's leaves start. */
function selection(def: TreeDef, nargs: number, argnums: Argnums, mask: Mask | undefined): boolean[] {
  if (def.kind !== "array") throw new TraceError("grad: internal: argument list is not an array");
  const nums = typeof argnums === "number" ? [argnums] : [...argnums];
  for (const k of nums) {
    if (!Number.isInteger(k) || k < 0 || k >= nargs) throw new TraceError(`grad: argnums ${k} is out of range for ${nargs} arguments`);
  }
  if (mask !== undefined && typeof argnums !== "number") throw new TraceError("grad: `trainable` needs a single argnums");
  return def.items.flatMap((d, i) => {
    if (!nums.includes(i)) return new Array<boolean>(leafCount(d)).fill(false);
    return mask === undefined ? new Array<boolean>(leafCount(d)).fill(true) : maskLeaves(d, mask, "trainable");
  });
}

/** Splits a gradient leaf list back into the trees of the differentiated arguments. */
function gradTrees(def: TreeDef, argnums: Argnums, leaves: readonly (AnyTensor | null)[]): unknown {
  if (def.kind !== "array") throw new TraceError("grad: internal: argument list is not an array");
  const trees: unknown[] = [];
  let at = 0;
  def.items.forEach((d, i) => {
    const n = leafCount(d);
    trees.push(unflatten(d, leaves.slice(at, at + n)));
    at += n;
  });
  return typeof argnums === "number" ? trees[argnums] : argnums.map((k) => trees[k]);
}

/**
 * `f`'s value and its gradient with respect to `argnums` (default: the first argument), as
 * trees shaped like those arguments. `f` must return a float scalar (or `[scalar, aux]` with
 * `hasAux`). Works inside a trace: call it from the function given to trace or evaluate.
 */
export function valueAndGrad<F extends AnyFn, const N extends Argnums = 0, const M extends Mask = true>(
  f: F,
  opts: GradOptions<N, M> = {},
): (...args: Parameters<F>) => [ReturnType<F>, GradResult<Parameters<F>, N, M>] {
  const argnums = (opts.argnums ?? 0) as Argnums;
  return (...args) => {
    const [leaves, def] = flatten(args, isTensor);
    const selected = selection(def, args.length, argnums, opts.trainable);
    const nested = traceNested("grad", (...ls) => f(...(unflatten(def, ls) as unknown[])), leaves, argPaths(def));
    const outs = nested.graph.outputs;
    const loss = outs[0];
    const scalarOut = opts.hasAux ? nested.outTree.kind === "array" && nested.outTree.items.length === 2 : nested.outTree.kind === "leaf";
    if (!scalarOut || !loss || loss.shape.length !== 0 || !isFloat(loss.dtype)) {
      const found = loss ? fmtT(loss) : "no tensor";
      const want = opts.hasAux ? "[a float scalar, aux]" : "a float scalar (shape [])";
      throw new TraceError(`grad: the function must return ${want}; found ${found}${outs.length > 1 && !opts.hasAux ? ` and ${outs.length - 1} more` : ""}`);
    }
    const wrt = selected.flatMap((s, i) => (s && isFloat(leaves[i]!.dtype) ? [i] : []));
    const inputs = nestedArgs(nested, leaves);
    // the value and aux come from the primal as the rewrites leave it, so they share the
    // gradient's forward nodes (hash-consed) instead of running a second, unrewritten forward
    const primal = applyPrimalRewrites(nested.graph);
    const lossGraph: Graph = buildGraph([primal.outputs[0]!], primal.inputs);
    const one = fill([], 1, loss.dtype);
    const res = inlineHere(vjpOfPrimal(lossGraph, wrt), [...inputs, currentContext().own(one)]);
    const grads: (AnyTensor | null)[] = leaves.map(() => null);
    wrt.forEach((i, k) => (grads[i] = res[1 + k]!));
    const value = opts.hasAux ? unflatten(nested.outTree, inlineHere(primal, inputs)) : res[0];
    return [value as ReturnType<F>, gradTrees(def, argnums, grads) as GradResult<Parameters<F>, N, M>];
  };
}

/** The gradient of `f` (see valueAndGrad). */
export function grad<F extends AnyFn, const N extends Argnums = 0, const M extends Mask = true>(
  f: F,
  opts: GradOptions<N, M> = {},
): (...args: Parameters<F>) => GradResult<Parameters<F>, N, M> {
  const vg = valueAndGrad(f, opts);
  return (...args) => vg(...args)[1];
}

/**
 * `f` at `primals` and its vector-Jacobian product: `pullback(ct)` maps a cotangent shaped
 * like the output to one cotangent tree per primal (null for non-float leaves).
 */
export function vjp<A extends readonly unknown[], R>(
  f: (...args: A) => R,
  ...primals: A
): [R, (ct: R) => { -readonly [K in keyof A]: GradsOf<A[K]> }] {
  const [leaves, def] = flatten(primals, isTensor);
  const nested = traceNested("vjp", (...ls) => f(...(unflatten(def, ls) as unknown as A)), leaves, argPaths(def));
  // as in valueAndGrad: the output from the rewritten primal, whose nodes the pullback shares
  const primal = applyPrimalRewrites(nested.graph);
  const out = unflatten<R>(nested.outTree, inlineHere(primal, nestedArgs(nested, leaves)));
  const wrt = leaves.flatMap((l, i) => (isFloat(l.dtype) ? [i] : []));
  let back: Graph | undefined;
  const pullback = (ct: R): { -readonly [K in keyof A]: GradsOf<A[K]> } => {
    const [cts] = flatten(ct, isTensor);
    const outs = nested.graph.outputs;
    if (cts.length !== outs.length || cts.some((c, i) => c.dtype !== outs[i]!.dtype || c.shape.join() !== outs[i]!.shape.join())) {
      throw new TraceError(`vjp: the cotangent must match the output (${outs.map(fmtT).join(", ")}), found (${cts.map(fmtT).join(", ")})`);
    }
    back ??= vjpOfPrimal(primal, wrt);
    const ctx = currentContext("vjp");
    const res = inlineHere(back, [...nestedArgs(nested, leaves), ...cts.map((c) => ctx.own(c))]);
    const grads: (AnyTensor | null)[] = leaves.map(() => null);
    wrt.forEach((i, k) => (grads[i] = res[outs.length + k]!));
    return unflatten(def, grads);
  };
  return [out, pullback];
}
