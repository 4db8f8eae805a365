// Reverse-mode autodiff as a graph → graph transform. The forward graph is re-emitted on a
// fresh builder, then one reverse sweep over its topological order calls each primitive's VJP
// rule and sums cotangents. Rules are written in primitives, so the result can itself be
// differentiated (vjpGraph of a vjpGraph gives second derivatives).
import { GraphBuilder } from "../ir/builder.js";
import type { Attrs, Graph, GraphRef, Node } from "../ir/node.js";
import { isFloat } from "../ir/dtype.js";
import { getPrimitive } from "../ir/registry.js";
import { inline, inlineMap } from "../ir/inline.js";
import { printNode } from "../ir/print.js";
import { sameShape } from "../ir/shapes.js";
import { TraceError } from "../errors.js";
import { full } from "../prims/source.js";
import { applyPrimalRewrites } from "./rewrites.js";

/**
 * The VJP of `graph` with respect to its inputs at positions `wrt`.
 * Inputs: the primal inputs, then one cotangent per output (named `ct0`, `ct1`, …).
 * Outputs: the primal outputs, then one cotangent per `wrt` input — zeros (a broadcast
 * constant) where the outputs do not depend on it. Nodes only the gradient does not need
 * are dropped by `build`. Registered primal rewrites (autodiff/rewrites.ts) run first.
 */
export function vjpGraph(graph: Graph, wrt: readonly number[]): Graph {
  return vjpOfPrimal(applyPrimalRewrites(graph), wrt);
}

/** vjpGraph of a graph the primal rewrites have already been applied to (grad's nested graphs). */
export function vjpOfPrimal(graph: Graph, wrt: readonly number[]): Graph {
  for (const i of wrt) {
    if (!Number.isInteger(i) || i < 0 || i >= graph.inputs.length) {
      throw new TraceError(`vjpGraph: wrt index ${i} is out of range for a graph with ${graph.inputs.length} inputs`);
    }
  }
  const b = new GraphBuilder();
  const primals = graph.inputs.map((n) => b.input(String(n.attrs.name), n.shape, n.dtype, n.site));
  const cts = graph.outputs.map((o, i) => b.input(`ct${i}`, o.shape, o.dtype));
  const map = inlineMap(graph, b, primals);
  const outputs = graph.outputs.map((o) => map.get(o)!);
  const targets = wrt.map((i) => primals[i]!);
  const grads = backprop(b, outputs, cts, targets);
  const gradOuts = targets.map((t, k) => grads[k] ?? full(b, 0, t));
  return b.build([...outputs, ...gradOuts], [...primals, ...cts]);
}

/**
 * Cotangents of `targets` given cotangents `seeds` of `outputs`, emitted on `b`; null where a
 * target is not reached. The lower-level entry point for transforms that build their own graphs.
 */
export function backprop(b: GraphBuilder, outputs: readonly Node[], seeds: readonly Node[], targets: readonly Node[]): (Node | null)[] {
  // Forward sweep: which float nodes depend on a target (only they carry gradients).
  const live = new Set<Node>(targets.filter((t) => isFloat(t.dtype)));
  const order = reachable(outputs);
  for (const n of order) if (!live.has(n) && isFloat(n.dtype) && n.inputs.some((i) => live.has(i))) live.add(n);

  const ct = new Map<Node, Node>();
  const accumulate = (n: Node, g: Node): void => {
    const prev = ct.get(n);
    ct.set(n, prev ? b.emit("add", [prev, g]) : g);
  };
  outputs.forEach((o, i) => {
    if (live.has(o)) accumulate(o, seeds[i]!);
  });

  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    const g = ct.get(n);
    if (!g || n.inputs.length === 0 || !n.inputs.some((i) => live.has(i))) continue;
    const rule = n.op === "call" ? callVjp : getPrimitive(n.op).vjp;
    if (!rule) throw new TraceError(`vjp: primitive "${n.op}" has no VJP rule, but a gradient flows through\n    ${printNode(n)}`);
    const gs = rule(g, n, b);
    n.inputs.forEach((inp, i) => {
      const gi = gs[i];
      if (!gi || !live.has(inp)) return;
      if (!sameShape(gi.shape, inp.shape) || gi.dtype !== inp.dtype) {
        throw new TraceError(
          `vjp: the rule of "${n.op}" returned ${gi.dtype}[${gi.shape}] for input ${i}, which is ${inp.dtype}[${inp.shape}]\n    ${printNode(n)}`,
        );
      }
      accumulate(inp, gi);
    });
  }
  return targets.map((t) => ct.get(t) ?? null);
}

/** Every node `outputs` depend on, in topological (id) order. */
function reachable(outputs: readonly Node[]): Node[] {
  const seen = new Set<Node>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const i of n.inputs) stack.push(i);
  }
  return [...seen].sort((a, b) => a.id - b.id);
}

/** One more `remat` level than the node had, so the copy never hash-conses with its source. */
const remat = (n: Node): Attrs => ({ ...n.attrs, remat: ((n.attrs.remat as number | undefined) ?? 0) + 1 });

// vjpGraph of a body is the same for every call of it (a checkpointed layer used N times).
const bodyVjps = new WeakMap<Graph, Graph>();

function bodyVjp(body: Graph): Graph {
  let g = bodyVjps.get(body);
  if (!g) {
    const wrt = body.inputs.flatMap((n, i) => (isFloat(n.dtype) ? [i] : []));
    g = vjpGraph(body, wrt);
    bodyVjps.set(body, g);
  }
  return g;
}

/**
 * VJP rule of `call` (prims/call.ts): the transform applied to the body, so it lives with the
 * transform rather than in the primitive's record.
 */
export function callVjp(ct: Node, node: Node, b: GraphBuilder): (Node | null)[] {
  const args = node.inputs;
  if (node.attrs.mode === "customVjp") {
    const outs = inline((node.attrs.bwd as GraphRef).graph, b, [...args, ct]);
    return outs.map((o, i) => (isFloat(args[i]!.dtype) ? o : null));
  }
  // checkpoint: forward recomputation and backward of the body, all marked `remat`
  const body = (node.attrs.body as GraphRef).graph;
  const outs = inline(bodyVjp(body), b, [...args, ct], remat);
  const grads = outs.slice(1);
  let k = 0;
  return args.map((a) => (isFloat(a.dtype) ? grads[k++]! : null));
}
