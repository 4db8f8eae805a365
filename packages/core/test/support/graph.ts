// Graph-level test helpers: build a small graph from a function of a GraphBuilder, and check
// its VJP against central finite differences of the interpreter's float64 forward.
import { GraphBuilder, interpret, vjpGraph, type DType, type Graph, type Node } from "@dorafuse/core";
import { dot, expectClose, finiteDiff } from "./numeric.js";
import { randomArray, type Rng } from "./random.js";

export type InputSpec = readonly [name: string, shape: readonly number[], dtype?: DType];

/** A graph whose inputs are `specs` and whose outputs `fn` emits on the builder. */
export function makeGraph(specs: readonly InputSpec[], fn: (b: GraphBuilder, ...xs: Node[]) => Node | Node[]): Graph {
  const b = new GraphBuilder();
  const xs = specs.map(([name, shape, dtype]) => b.input(name, shape, dtype ?? "f32"));
  const out = fn(b, ...xs);
  return b.build(Array.isArray(out) ? out : [out], xs);
}

/** Σ over outputs of ⟨ct_o, f(xs)_o⟩: the scalar whose gradient a VJP with cotangents `cts` gives. */
export function pairing(graph: Graph, cts: readonly Float64Array[]): (xs: Float64Array[]) => number {
  return (xs) => interpret(graph, xs).reduce((s, y, o) => s + dot(cts[o]!, y), 0);
}

/**
 * Checks vjpGraph(graph, wrt) at `inputs` with random output cotangents: each gradient must
 * match central finite differences of the pairing to `tol` (relative, float64).
 */
export function checkVjp(graph: Graph, values: readonly ArrayLike<number>[], wrt: readonly number[], rng: Rng, tol = 1e-6): void {
  const inputs = values.map((v) => Float64Array.from(v));
  const cts = graph.outputs.map((o) => randomArray(rng, o.shape.reduce((p, d) => p * d, 1)));
  const grads = interpret(vjpGraph(graph, wrt), [...inputs, ...cts]).slice(graph.outputs.length);
  const L = pairing(graph, cts);
  wrt.forEach((k, i) => {
    const name = String(graph.inputs[k]!.attrs.name);
    expectClose(grads[i]!, finiteDiff(L, inputs, k), tol, `gradient wrt "${name}"`);
  });
}
