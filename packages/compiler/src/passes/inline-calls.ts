// `call` nodes (checkpoint and customVjp regions) are a tracing and autodiff device; kernels
// never see them. Their bodies are spliced into the graph, so fusion works across them.
import { inline, type Graph, type GraphRef } from "@dorafuse/core";
import { rewrite } from "./rewrite.js";

export function inlineCalls(graph: Graph): Graph {
  if (!graph.nodes.some((n) => n.op === "call")) return graph;
  return rewrite(graph, (n, b) => {
    if (n.op !== "call") return undefined;
    const body = (n.attrs.body as GraphRef).graph;
    return inline(body, b, n.inputs)[0];
  });
}
