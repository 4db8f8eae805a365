// Primal rewrites: graph → graph transforms that vjpGraph applies to a function's graph
// BEFORE differentiating it. A library registers one to replace a composite (written in
// primitives) with a fused primitive whose VJP rule emits a fused backward — recognizing the
// primal is robust, recognizing an already-differentiated backward is not. Core only runs
// them; the compiler registers the DoRA rewrite (packages/compiler/src/dora). A rewrite must
// keep the graph's interface (the same inputs, in order, and the same number of outputs)
// and its values (up to float rounding).
import type { Graph } from "../ir/node.js";
import { TraceError } from "../errors.js";

export type PrimalRewrite = (graph: Graph) => Graph;

const rewrites = new Map<string, PrimalRewrite>();

/** Adds a rewrite; re-registering a name throws unless `replace` is set. */
export function registerPrimalRewrite(name: string, rewrite: PrimalRewrite, replace = false): void {
  if (rewrites.has(name) && !replace) throw new TraceError(`registerPrimalRewrite: "${name}" is already registered`);
  rewrites.set(name, rewrite);
}

export function unregisterPrimalRewrite(name: string): void {
  rewrites.delete(name);
}

/** The registered rewrites applied in registration order; checks that each kept the interface. */
export function applyPrimalRewrites(graph: Graph): Graph {
  let g = graph;
  for (const [name, rewrite] of rewrites) {
    const next = rewrite(g);
    const same = next.inputs.length === g.inputs.length && next.outputs.length === g.outputs.length &&
      next.inputs.every((n, i) => n.dtype === g.inputs[i]!.dtype && n.shape.join() === g.inputs[i]!.shape.join());
    if (!same) throw new TraceError(`primal rewrite "${name}" changed the graph's interface (its inputs or number of outputs)`);
    g = next;
  }
  return g;
}
