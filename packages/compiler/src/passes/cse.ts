// Common-subexpression elimination: rebuilding a graph on one hash-consing builder merges
// every pair of nodes with the same op, inputs and attributes.
import type { Graph } from "@dorafuse/core";
import { rewrite } from "./rewrite.js";

export function cse(graph: Graph): Graph {
  return rewrite(graph);
}
