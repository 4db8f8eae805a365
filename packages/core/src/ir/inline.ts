// Re-emitting a graph on another builder with its inputs replaced: how grad-of-grad, call
// nodes and passes splice one graph into another.
import type { GraphBuilder } from "./builder.js";
import type { Attrs, Graph, Node } from "./node.js";
import { ShapeError } from "../errors.js";
import { fmtShape, sameShape } from "./shapes.js";

/** Every node of `graph` mapped to its copy on `b` (inputs map to `args`). */
export function inlineMap(
  graph: Graph,
  b: GraphBuilder,
  args: readonly Node[],
  mapAttrs?: (n: Node) => Attrs,
): Map<Node, Node> {
  if (args.length !== graph.inputs.length) {
    throw new ShapeError(`inline: the graph takes ${graph.inputs.length} inputs, found ${args.length} arguments`, "inline");
  }
  const map = new Map<Node, Node>();
  graph.inputs.forEach((inp, i) => {
    const a = args[i]!;
    if (!sameShape(a.shape, inp.shape) || a.dtype !== inp.dtype) {
      throw new ShapeError(
        `inline: argument ${i} ("${String(inp.attrs.name)}") must be ${inp.dtype}${fmtShape(inp.shape)}, found ${a.dtype}${fmtShape(a.shape)}`,
        "inline",
      );
    }
    map.set(inp, a);
  });
  for (const n of graph.nodes) {
    if (map.has(n)) continue;
    if (n.op === "input") throw new ShapeError(`inline: node %${n.id} is an input not listed in the graph's inputs`, "inline");
    const inputs = n.inputs.map((i) => map.get(i)!);
    map.set(n, b.emit(n.op, inputs, mapAttrs ? mapAttrs(n) : n.attrs, n.site));
  }
  return map;
}

/** The outputs of `graph` re-emitted on `b` with its inputs replaced by `args`. */
export function inline(graph: Graph, b: GraphBuilder, args: readonly Node[], mapAttrs?: (n: Node) => Attrs): Node[] {
  const map = inlineMap(graph, b, args, mapAttrs);
  return graph.outputs.map((o) => map.get(o)!);
}
