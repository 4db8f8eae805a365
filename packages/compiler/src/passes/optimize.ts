// The pass pipeline run before fusion: inline `call` bodies, then one bottom-up rewrite that
// applies canonicalization, constant folding, algebraic simplification and the factoring of
// scales out of contractions (factor-scale.ts) to every node until
// none fires (its inputs are already in final form), with CSE and DCE from the rebuild. It
// repeats while the graph keeps shrinking, since a simplification can expose another upstream.
import type { Graph } from "@dorafuse/core";
import { canonicalRule } from "./canonicalize.js";
import { factorScaleRule } from "./factor-scale.js";
import { foldRule } from "./fold-constants.js";
import { inlineCalls } from "./inline-calls.js";
import { firstOf, rewrite } from "./rewrite.js";
import { simplifyRule, transposeProducts } from "./simplify.js";

export function optimize(graph: Graph): Graph {
  let g = inlineCalls(graph);
  const rule = firstOf(canonicalRule, foldRule, simplifyRule, factorScaleRule);
  for (let round = 0; round < 4; round++) {
    const next = rewrite(transposeProducts(g), rule);
    const shrank = next.nodes.length < g.nodes.length;
    g = next;
    if (!shrank) break;
  }
  return g;
}
