// Tracing a function for `compile` and `explain`, with its state: the function runs on
// tracers; with `state: { params: 0 }` its result's `params` entry is split off as the new
// value of argument 0. The graph's outputs are the visible results, then each state update;
// `pairs` ties every state input leaf to the output leaf holding its new value.
import { flatten, HostTensor, leafPaths, trace, TensorSpec, unflatten, type Graph, type TreeDef } from "@dorafuse/core";
import { Tensor as GpuTensor } from "@dorafuse/runtime";
import { CompileError } from "./errors.js";

export interface TraceCallOptions {
  /** Result key → index of the argument whose new value it is. */
  state?: Readonly<Record<string, number>>;
  names?: readonly string[];
  dims?: Readonly<Record<string, number>>;
}

export interface TracedCall {
  graph: Graph;
  pairs: { input: number; output: number }[];
  /** Plan names of the visible outputs and their tree. */
  outNames: string[];
  outDef: TreeDef;
  /** Each argument's tree and the index of its first leaf among the graph inputs. */
  argDefs: TreeDef[];
  argStart: number[];
  argLeaves: number[];
}

const leaves = (d: TreeDef): number => leafPaths(d, "x").length;

/** Leaves that describe an argument: specs, host tensors, GPU tensors. */
export const isArgLeaf = (v: unknown): v is HostTensor | GpuTensor | TensorSpec => v instanceof HostTensor || v instanceof GpuTensor || v instanceof TensorSpec;

/** The spec tree of a tree of specs, host tensors or GPU tensors. */
export function specTree(tree: unknown): unknown {
  const [ls, def] = flatten(tree, isArgLeaf);
  return unflatten(def, ls.map((l) => (l instanceof TensorSpec ? l : new TensorSpec([...l.shape], l.dtype))));
}

export function traceCall(fn: (...args: never[]) => unknown, specs: readonly unknown[], opts: TraceCallOptions = {}): TracedCall {
  const stateOf = Object.entries(opts.state ?? {});
  for (const [key, arg] of stateOf) {
    if (!Number.isInteger(arg) || arg < 0 || arg >= specs.length) throw new CompileError(`state "${key}" names argument ${arg}, but the function takes ${specs.length}`, "compile options");
  }
  const wrapped = (...args: unknown[]) => {
    const r = (fn as (...a: unknown[]) => unknown)(...args);
    if (stateOf.length === 0) return [r];
    if (typeof r !== "object" || r === null || Array.isArray(r)) {
      throw new CompileError(`with state, the function must return an object holding ${stateOf.map(([k]) => `"${k}"`).join(", ")}`, "compile");
    }
    const rest: Record<string, unknown> = { ...(r as Record<string, unknown>) };
    const updates = stateOf.map(([k, arg]) => {
      if (!(k in rest)) throw new CompileError(`the function's result has no "${k}" (the new value of state argument ${arg})`, "compile");
      const v = rest[k];
      delete rest[k];
      return v;
    });
    return [rest, ...updates];
  };
  const traced = trace(wrapped as never, specs.map(specTree) as never, { ...(opts.names ? { names: opts.names } : {}), ...(opts.dims ? { dims: opts.dims } : {}) });
  const outParts = traced.outTree.kind === "array" ? traced.outTree.items : [];
  const argDefs = traced.inTree.kind === "array" ? [...traced.inTree.items] : [];
  const argLeaves = argDefs.map(leaves);
  const argStart = argLeaves.map((_, i) => argLeaves.slice(0, i).reduce((a, b) => a + b, 0));
  const outLeaves = outParts.map(leaves);
  const outStart = outLeaves.map((_, i) => outLeaves.slice(0, i).reduce((a, b) => a + b, 0));
  const pairs: TracedCall["pairs"] = [];
  stateOf.forEach(([key, arg], k) => {
    if (argLeaves[arg] !== outLeaves[k + 1]) throw new CompileError(`state "${key}" has ${outLeaves[k + 1]} tensors, argument ${arg} has ${argLeaves[arg]}`, "compile");
    for (let m = 0; m < argLeaves[arg]!; m++) pairs.push({ input: argStart[arg]! + m, output: outStart[k + 1]! + m });
  });
  return { graph: traced.graph, pairs, outNames: leafPaths(outParts[0]!, "out"), outDef: outParts[0]!, argDefs, argStart, argLeaves };
}
