// What it costs to compute a node again instead of reading it from memory: the fusion pass
// duplicates cheap producers into every kernel that needs them and materializes expensive
// ones once. Index-only ops (layout, iota, constants) are free; arithmetic is cheap;
// transcendental functions, division and random bits are not.
import { getPrimitive, type Node } from "@dorafuse/core";

const FREE = new Set(["reshape", "transpose", "broadcast", "slice", "constant", "iota", "stopGradient"]);
const EXPENSIVE: Record<string, number> = {
  exp: 4, log: 4, sin: 4, cos: 4, tanh: 4, sqrt: 3, rsqrt: 3, erf: 6, pow: 6, div: 3, recip: 3, randomBits: 24, gather: 2,
  pad: 1, concat: 1,
};

/** Cost of recomputing `n` alone, given its inputs. */
export function opCost(n: Node): number {
  if (FREE.has(n.op)) return 0;
  const e = EXPENSIVE[n.op];
  if (e !== undefined) return e;
  const kind = n.op === "input" ? "source" : getPrimitive(n.op).kind;
  return kind === "elementwise" ? 1 : 2;
}

/** Recompute cost of `n` with every non-materialized producer it pulls in (each counted once). */
export function coneCost(n: Node, isMaterialized: (m: Node) => boolean): number {
  const seen = new Set<Node>();
  const walk = (m: Node): number => {
    if (seen.has(m) || m.op === "input" || isMaterialized(m)) return 0;
    seen.add(m);
    return opCost(m) + m.inputs.reduce((s, i) => s + walk(i), 0);
  };
  return walk(n);
}

/** Multi-consumer values that cost at least this much to recompute are materialized once. */
export const SHARED_RECOMPUTE_LIMIT = 8;
/** Matmul operands re-read per output tile: only this much fused work is worth recomputing. */
export const MATMUL_PROLOGUE_LIMIT = 2;
