// Algebraic simplification: the identities a traced autodiff graph is full of. Multiplying by
// one, adding or subtracting zero, dividing by one, double negation, transpose of transpose,
// reshape of reshape, broadcast of broadcast, a reduction over axes that were only broadcast
// (a sum becomes a multiplication by the count), layout ops over a broadcast scalar, and
// `where` or `max`/`min` with equal branches; and, as a pass of its own (it counts uses), the
// transpose of a product read only transposed ((a·b)ᵀ = bᵀ·aᵀ).
import { sameShape, type Graph, type Node } from "@dorafuse/core";
import { constantLike, scalarValue } from "./fold-constants.js";
import { rebuild, rewrite, type Rule } from "./rewrite.js";

const is = (n: Node, v: number): boolean => scalarValue(n) === v;

export const simplifyRule: Rule = (n, b) => {
  const [x, y] = n.inputs;
  switch (n.op) {
    case "mul":
      if (is(y!, 1)) return x;
      if (is(x!, 1)) return y;
      return undefined;
    case "add":
      if (is(y!, 0)) return x;
      if (is(x!, 0)) return y;
      return undefined;
    case "sub":
      return is(y!, 0) ? x : undefined;
    case "div":
      return is(y!, 1) ? x : undefined;
    case "neg":
      return x!.op === "neg" ? x!.inputs[0] : undefined;
    case "where":
      return n.inputs[1] === n.inputs[2] ? n.inputs[1] : undefined;
    case "max":
    case "min":
      return x === y ? x : undefined;
    case "transpose": {
      if (x!.op === "broadcast" && scalarValue(x!) !== undefined) return b.emit("broadcast", [x!.inputs[0]!], { shape: [...n.shape] });
      if (x!.op !== "transpose") return undefined;
      const inner = x!.attrs.perm as number[];
      const perm = (n.attrs.perm as number[]).map((p) => inner[p]!);
      return perm.every((p, i) => p === i) ? x!.inputs[0] : b.emit("transpose", [x!.inputs[0]!], { perm }, n.site);
    }
    case "reshape":
    case "slice":
      if (x!.op === "broadcast" && x!.inputs[0]!.shape.length === 0) return b.emit("broadcast", [x!.inputs[0]!], { shape: [...n.shape] });
      if (n.op === "reshape" && x!.op === "reshape") {
        const src = x!.inputs[0]!;
        return sameShape(src.shape, n.shape) ? src : b.emit("reshape", [src], { shape: [...n.shape] }, n.site);
      }
      return undefined;
    case "broadcast":
      return x!.op === "broadcast" ? b.emit("broadcast", [x!.inputs[0]!], { shape: [...n.shape] }, n.site) : undefined;
    case "reduceSum":
    case "reduceMax":
      return x!.op === "broadcast" ? reduceOfBroadcast(n, x!, b) : undefined;
  }
  return undefined;
};

/** The permutation swaps the last two axes and keeps the others. */
const swapsLastTwo = (perm: readonly number[]): boolean => {
  const r = perm.length;
  return r >= 2 && perm[r - 1] === r - 2 && perm[r - 2] === r - 1 && perm.slice(0, -2).every((p, i) => p === i);
};

/**
 * (a·b)ᵀ = bᵀ·aᵀ for a product read only through its transpose: computed in the order it is
 * read instead of written and transposed (a product read both ways is left alone: rewriting
 * would compute it twice).
 */
export function transposeProducts(graph: Graph): Graph {
  const uses = new Map<Node, number>();
  for (const n of graph.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  const outputs = new Set(graph.outputs);
  const only = (n: Node) => n.op === "transpose" && n.inputs[0]!.op === "matmul" && swapsLastTwo(n.attrs.perm as number[]) && uses.get(n.inputs[0]!) === 1 && !outputs.has(n.inputs[0]!);
  if (!graph.nodes.some(only)) return graph;
  return rebuild(graph, (n, ins, b) => {
    if (!only(n)) return b.emit(n.op, ins, n.attrs, n.site);
    const [x, y] = ins[0]!.inputs as [Node, Node];
    const t = (v: Node) => b.emit("transpose", [v], { perm: [...(n.attrs.perm as number[])] });
    return b.emit("matmul", [t(y), t(x)], {}, n.site);
  });
}

/** Σ over axes that `broadcast` only repeated = the source times the count (max: the source). */
function reduceOfBroadcast(n: Node, bc: Node, b: Parameters<Rule>[1]): Node | undefined {
  const src = bc.inputs[0]!;
  const full = bc.shape;
  const off = full.length - src.shape.length;
  const axes = n.attrs.axes as number[];
  if (!axes.every((a) => a < off || src.shape[a - off] === 1)) return undefined;
  const keptSrc = src.shape.filter((_, k) => !axes.includes(k + off));
  let v = sameShape(keptSrc, src.shape) ? src : b.emit("reshape", [src], { shape: keptSrc });
  if (!sameShape(v.shape, n.shape)) v = b.emit("broadcast", [v], { shape: [...n.shape] });
  if (n.op === "reduceMax") return v;
  const count = axes.reduce((c, a) => c * full[a]!, 1);
  return count === 1 ? v : b.emit("mul", [v, constantLike(b, count, v)]);
}

export function simplify(graph: Graph): Graph {
  return rewrite(graph, simplifyRule);
}
