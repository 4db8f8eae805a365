// The pass framework: a pass rebuilds the graph on a fresh GraphBuilder, node by node in
// topological order, and may replace each rebuilt node by another built from it. Because the
// builder hash-conses, equal nodes merge as they are rebuilt (common-subexpression
// elimination); because the result keeps only what the outputs reach, dead code disappears.
// Rules see a node whose inputs are already rewritten, and are applied until none fires.
import { GraphBuilder, type Graph, type Node } from "@dorafuse/core";

/** A replacement for `n` built on `b`, or undefined to keep it. */
export type Rule = (n: Node, b: GraphBuilder) => Node | undefined;

const MAX_REWRITES_PER_NODE = 16;

export function rewrite(graph: Graph, rule?: Rule): Graph {
  return rebuild(graph, (n, ins, b) => {
    let m = b.emit(n.op, ins, n.attrs, n.site);
    for (let k = 0; rule && k < MAX_REWRITES_PER_NODE; k++) {
      const r = rule(m, b);
      if (!r || r === m) break;
      m = r;
    }
    return m;
  });
}

/**
 * Rebuilds `graph` on a fresh builder in topological order: `build` gets each node with its
 * inputs already rebuilt and returns what stands for it (a pass that needs the original node,
 * not only the rebuilt one, uses this rather than a rule).
 */
export function rebuild(graph: Graph, build: (n: Node, inputs: Node[], b: GraphBuilder) => Node): Graph {
  const b = new GraphBuilder();
  const map = new Map<Node, Node>();
  const inputs = graph.inputs.map((n) => {
    const m = b.input(String(n.attrs.name), n.shape, n.dtype, n.site);
    map.set(n, m);
    return m;
  });
  for (const n of graph.nodes) {
    if (!map.has(n)) map.set(n, build(n, n.inputs.map((i) => map.get(i)!), b));
  }
  return b.build(graph.outputs.map((o) => map.get(o)!), inputs);
}

/** Tries each rule in order; the first that fires wins. */
export const firstOf =
  (...rules: Rule[]): Rule =>
  (n, b) => {
    for (const r of rules) {
      const out = r(n, b);
      if (out && out !== n) return out;
    }
    return undefined;
  };
