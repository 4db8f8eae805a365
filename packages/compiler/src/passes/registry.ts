// Passes contributed by other packages (for example a pattern rewrite that recognizes a
// composite and replaces it with a custom op). They run, in registration order, after the
// built-in passes, on every graph compiled with the passes enabled.
import type { Graph } from "@dorafuse/core";
import { CompileError } from "../errors.js";

export type Pass = (graph: Graph) => Graph;

const passes = new Map<string, Pass>();

export function registerPass(name: string, pass: Pass, replace = false): void {
  if (passes.has(name) && !replace) throw new CompileError(`registerPass: a pass named "${name}" is already registered`, "registerPass");
  passes.set(name, pass);
}

export function unregisterPass(name: string): void {
  passes.delete(name);
}

/** The registered passes applied in order. */
export function runRegisteredPasses(graph: Graph): Graph {
  let g = graph;
  for (const pass of passes.values()) g = pass(g);
  return g;
}
