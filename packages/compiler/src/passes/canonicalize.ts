// Canonical forms, so that equal computations look equal to hash-consing and later rules:
// commutative operands in id order; identity layout ops, casts to the same dtype, empty
// reductions and stopGradient (a no-op once gradients are taken) replaced by their input.
import { sameShape, type Graph } from "@dorafuse/core";
import { rewrite, type Rule } from "./rewrite.js";

const COMMUTATIVE = new Set(["add", "mul", "max", "min", "eq", "ne", "and", "or"]);

export const canonicalRule: Rule = (n, b) => {
  const x = n.inputs[0];
  const a = n.attrs;
  switch (n.op) {
    case "stopGradient":
      return x;
    case "reshape":
    case "broadcast":
      return sameShape(x!.shape, n.shape) ? x : undefined;
    case "transpose":
      return (a.perm as number[]).every((p, i) => p === i) ? x : undefined;
    case "slice":
      return sameShape(x!.shape, n.shape) ? x : undefined;
    case "pad":
      return (a.low as number[]).every((v) => v === 0) && (a.high as number[]).every((v) => v === 0) ? x : undefined;
    case "concat":
      return n.inputs.length === 1 ? x : undefined;
    case "cast":
      return x!.dtype === n.dtype ? x : undefined;
    case "reduceSum":
    case "reduceMax":
      return (a.axes as number[]).length === 0 ? x : undefined;
  }
  if (COMMUTATIVE.has(n.op) && n.inputs.length === 2 && n.inputs[0]!.id > n.inputs[1]!.id) {
    return b.emit(n.op, [n.inputs[1]!, n.inputs[0]!], n.attrs, n.site);
  }
  return undefined;
};

export function canonicalize(graph: Graph): Graph {
  return rewrite(graph, canonicalRule);
}

