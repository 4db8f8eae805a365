// Sub-graphs held in attributes (bodies of `call` nodes). The fingerprint is a hash of the
// printed form, so equal bodies give equal keys and hash-consing can merge equal calls.
import type { Graph, GraphRef } from "./node.js";
import { printGraph } from "./print.js";

/** 53-bit string hash (cyrb53), as 14 hex digits: short, stable across runs. */
function hash53(s: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
}

/** Wraps a graph for use as an attribute value. */
export function graphRef(graph: Graph): GraphRef {
  return Object.freeze({ kind: "graph" as const, graph, fingerprint: hash53(printGraph(graph)) });
}
