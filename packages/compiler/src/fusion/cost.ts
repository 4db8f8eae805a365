// What it costs to compute a node again instead of reading it from memory: the fusion pass
// duplicates cheap producers into every kernel that needs them and materializes expensive
// ones once. The costs are the lowering table's (lowering.ts): index-only ops are free,
// arithmetic is cheap, transcendental functions, division and random bits are not.
import type { Node } from "@dorafuse/core";
import { loweringOf } from "../lowering.js";

/** Cost of recomputing `n` alone, given its inputs (the primitive's lowering record). */
export const opCost = (n: Node): number => loweringOf(n.op).cost;

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
