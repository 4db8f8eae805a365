// Dead-code elimination: only what the outputs depend on is kept (graph inputs stay, even
// unused, so callers can still pass them).
import { buildGraph, type Graph } from "@dorafuse/core";

export function dce(graph: Graph): Graph {
  return buildGraph(graph.outputs, graph.inputs);
}
