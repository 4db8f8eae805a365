// Nested traces: how grad, vjp, checkpoint and customVjp see a function as a graph while an
// outer trace is running. The function is traced on fresh inputs shaped like the arguments
// into its own graph; tensors of outer traces it closes over become extra inputs (captures).
// `inlineNested` splices such a graph back into the current trace; hash-consing merges what
// it recomputes with what is already there, so a forward pass inlined twice costs once.
import type { Graph, Node } from "../ir/node.js";
import type { DType } from "../ir/dtype.js";
import { inline } from "../ir/inline.js";
import { Tensor } from "../tensor/tensor.js";
import type { AnyTensor } from "../tensor/emit.js";
import { withUserSite } from "../tensor/emit.js";
import { currentContext, nestedContext, withContext, type TracerLike } from "./context.js";
import { flatten, type TreeDef } from "./pytree.js";
import { isTensor } from "./values.js";

export interface Nested {
  /** Inputs: one per argument leaf, then one per capture. */
  readonly graph: Graph;
  readonly outTree: TreeDef;
  /** The outer tensors feeding the capture inputs, in order. */
  readonly captures: readonly TracerLike[];
  /** Number of argument leaves (the first graph inputs). */
  readonly arity: number;
}

/**
 * Traces `fn` on tracers shaped like `args` in a context nested in the current one.
 * `names` name the graph's inputs (pytree paths); with `captures: false` (customVjp) using a
 * tensor of an enclosing trace is an error.
 */
export function traceNested(
  what: string,
  fn: (...leaves: AnyTensor[]) => unknown,
  args: readonly { readonly shape: readonly number[]; readonly dtype: DType }[],
  names: readonly string[],
  captures = true,
): Nested {
  const ctx = nestedContext(what, captures);
  const inputs = args.map((a, i) => ctx.builder.input(names[i] ?? `x${i}`, a.shape, a.dtype));
  const [outNodes, outTree] = withContext(ctx, () => {
    const result = fn(...inputs.map((n) => new Tensor(n, ctx) as AnyTensor));
    const [outs, def] = flatten(result, isTensor);
    return [outs.map((t) => ctx.own(t)), def] as const;
  });
  const graph = ctx.builder.build(outNodes, [...inputs, ...ctx.captures.map((c) => c.inner)]);
  return { graph, outTree, captures: ctx.captures.map((c) => c.outer), arity: args.length };
}

/** The nodes, in the current trace, that feed a nested graph: the arguments, then the captures. */
export function nestedArgs(nested: Nested, args: readonly TracerLike[]): Node[] {
  const ctx = currentContext();
  return [...args, ...nested.captures].map((t) => ctx.own(t));
}

/** Re-emits `graph` in the current trace on `inputs` (nodes of it); returns its outputs as tensors. */
export function inlineHere(graph: Graph, inputs: readonly Node[]): AnyTensor[] {
  const ctx = currentContext();
  let outs: Node[];
  try {
    outs = inline(graph, ctx.builder, inputs);
  } catch (e) {
    throw withUserSite(e);
  }
  return outs.map((n) => new Tensor(n, ctx) as AnyTensor);
}
