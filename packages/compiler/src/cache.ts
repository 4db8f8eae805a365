// The compile cache: a lowered graph is reused when the same graph (by fingerprint of its
// printed form) is compiled again for the same adapter with the same options, so calling a
// compiled function at shapes it has seen, or compiling the same model twice, costs a trace
// and a lookup. Pipelines are cached by the runtime (by WGSL hash) beside this.
import { graphRef, type Graph } from "@dorafuse/core";
import { lowerGraph, type CompileGraphOptions, type LoweredGraph } from "./compile-graph.js";
import { DEFAULT_TARGET } from "./limits.js";

const cache = new Map<string, LoweredGraph>();
let hits = 0;
let misses = 0;

/** The cache key: graph fingerprint, adapter and every option that changes the plan. */
export function cacheKey(graph: Graph, options: CompileGraphOptions): string {
  const target = options.target ?? DEFAULT_TARGET;
  const opts = {
    fusion: options.fusion ?? true,
    optimize: options.optimize ?? true,
    limits: options.limits ?? {},
    maxFusedRow: options.maxFusedRow ?? null,
    state: options.state ?? [],
    outputNames: options.outputNames ?? null,
  };
  return [graphRef(graph).fingerprint, target.adapter, JSON.stringify(target.limits), target.f16, JSON.stringify(opts)].join("|");
}

/** lowerGraph through the cache. */
export function lowerCached(graph: Graph, options: CompileGraphOptions): { lowered: LoweredGraph; cached: boolean } {
  const key = cacheKey(graph, options);
  const hit = cache.get(key);
  if (hit) {
    hits++;
    return { lowered: hit, cached: true };
  }
  misses++;
  const lowered = lowerGraph(graph, options);
  cache.set(key, lowered);
  return { lowered, cached: false };
}

export function compileCacheStats(): { entries: number; hits: number; misses: number } {
  return { entries: cache.size, hits, misses };
}

export function clearCompileCache(): void {
  cache.clear();
  hits = 0;
  misses = 0;
}
