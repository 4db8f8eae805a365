// Constant folding: an elementwise op whose inputs are all scalar constants (or broadcasts of
// them) is evaluated now, with the primitive's own reference implementation, rounded to its
// dtype as the device would store it, and replaced by a constant (broadcast to its shape).
import { getPrimitive, roundFor, type EvalContext, type GraphBuilder, type Graph, type Node } from "@dorafuse/core";
import { rewrite, type Rule } from "./rewrite.js";

/** The scalar value `n` holds everywhere, if it is a constant or a broadcast of one. */
export function scalarValue(n: Node): number | undefined {
  if (n.op === "constant") return n.attrs.value as number;
  if (n.op === "broadcast" || n.op === "reshape") return scalarValue(n.inputs[0]!);
  return undefined;
}

const ctx: EvalContext = {
  mode: "f64",
  evaluateGraph: () => {
    throw new Error("constant folding does not evaluate sub-graphs");
  },
};

/** A constant of `n`'s dtype holding `value`, broadcast to `n`'s shape. */
export function constantLike(b: GraphBuilder, value: number, n: { shape: readonly number[]; dtype: Node["dtype"] }): Node {
  const c = b.emit("constant", [], { value, dtype: n.dtype });
  return n.shape.length === 0 ? c : b.emit("broadcast", [c], { shape: [...n.shape] });
}

export const foldRule: Rule = (n, b) => {
  if (n.op === "constant" || n.inputs.length === 0) return undefined;
  const prim = getPrimitive(n.op);
  if (prim.kind !== "elementwise") return undefined;
  const values = n.inputs.map(scalarValue);
  if (values.some((v) => v === undefined)) return undefined;
  // the device holds each constant in its dtype, then rounds the result to the output's
  const args = values.map((v, i) => Float64Array.of(roundFor(n.inputs[i]!.dtype)?.(v!) ?? v!));
  const out = prim.evaluate(args, n, ctx)[0]!;
  const round = roundFor(n.dtype);
  return constantLike(b, round ? round(out) : out, n);
};

export function foldConstants(graph: Graph): Graph {
  return rewrite(graph, foldRule);
}
