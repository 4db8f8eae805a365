// compileGraph: graph → ExecutionPlan. Optimize (passes/), fuse into kernel groups
// (fusion/), plan memory (memory/), emit WGSL and steps (plan/), then validate the result.
// `lowerGraph` returns every intermediate product for `explain`, tests and benchmarks.
import type { Graph, Node } from "@dorafuse/core";
import type { ExecutionPlan } from "@dorafuse/runtime";
import { CompileError } from "./errors.js";
import { fuse } from "./fusion/fuse.js";
import type { Schedule } from "./fusion/group.js";
import { DEFAULT_TARGET, withLimits, type KernelLimits, type Target } from "./limits.js";
import { planMemory, type MemoryPlan, type StatePair } from "./memory/plan-memory.js";
import { validateDispatches, validateMemory } from "./memory/validate.js";
import { optimize } from "./passes/optimize.js";
import { runRegisteredPasses } from "./passes/registry.js";
import { emitPlan, type KernelInfo, type NamedTensor } from "./plan/emit.js";
import { totalsOf, type PlanTotals } from "./report.js";

export interface CompileGraphOptions {
  /** false: one kernel per primitive. Default true. */
  fusion?: boolean;
  /** Run the graph passes first. Default true. */
  optimize?: boolean;
  /** The adapter the plan is for (limits, shader-f16); see `targetOf(device)`. Default: WebGPU's defaults. */
  target?: Target;
  /** Lower some limits below the target's (tests use this to force packing and split dispatches). */
  limits?: Partial<KernelLimits>;
  /** Longest row a reduction shares its kernel with its broadcast consumers. */
  maxFusedRow?: number;
  /** Graph inputs that are state: input index → index of the output holding its new value. */
  state?: readonly { input: number; output: number }[];
  /** Names of the plan's outputs (default out0, out1, …); outputs used as state updates are not listed. */
  outputNames?: readonly string[];
}

export interface LoweredGraph {
  plan: ExecutionPlan;
  /** The graph after the passes. */
  graph: Graph;
  schedule: Schedule;
  memory: MemoryPlan;
  kernels: KernelInfo[];
  totals: PlanTotals;
  target: Target;
  /** Plan name of each graph input (a plan input, or a state tensor for state inputs). */
  inputNames: string[];
  /** Which graph inputs are state. */
  stateInputs: Set<number>;
}

function uniqueNames(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = seen.get(n) ?? 0;
    seen.set(n, k + 1);
    return k === 0 ? n : `${n}#${k}`;
  });
}

export function lowerGraph(source: Graph, options: CompileGraphOptions = {}): LoweredGraph {
  const target = withLimits(options.target ?? DEFAULT_TARGET, options.limits ?? {});
  const graph = options.optimize === false ? source : runRegisteredPasses(optimize(source));
  if (graph.inputs.length !== source.inputs.length || graph.outputs.length !== source.outputs.length) {
    throw new CompileError("the passes changed the graph's interface", "compileGraph");
  }
  const statePairs = options.state ?? [];
  for (const s of statePairs) {
    const i = graph.inputs[s.input];
    const o = graph.outputs[s.output];
    if (!i || !o) throw new CompileError(`state pair {input: ${s.input}, output: ${s.output}} names a missing input or output`, "compileGraph");
    if (i.dtype !== o.dtype || i.shape.join() !== o.shape.join()) {
      throw new CompileError(`state "${String(i.attrs.name)}" is ${i.dtype}[${i.shape}] but its update (output ${s.output}) is ${o.dtype}[${o.shape}]`, "compileGraph");
    }
  }
  const schedule = fuse(graph, { fusion: options.fusion ?? true, target, ...(options.maxFusedRow ? { maxFusedRow: options.maxFusedRow } : {}) });
  const state: StatePair[] = statePairs.map((s) => ({ input: graph.inputs[s.input]!, update: graph.outputs[s.output]! }));
  const memory = planMemory(schedule, state, target);
  validateMemory(memory);
  const stateIdx = new Set(statePairs.map((s) => s.input));
  const updateIdx = new Set(statePairs.map((s) => s.output));
  const inputNames = uniqueNames(graph.inputs.map((n) => String(n.attrs.name)));
  const visible = graph.outputs.map((node, i) => ({ node, i })).filter((o) => !updateIdx.has(o.i));
  const outNames = options.outputNames ?? visible.map((_, k) => `out${k}`);
  if (outNames.length !== visible.length) throw new CompileError(`${outNames.length} output names for ${visible.length} outputs`, "compileGraph");
  const io = {
    inputs: graph.inputs.map((node, i) => ({ name: inputNames[i]!, node })).filter((_, i) => !stateIdx.has(i)),
    outputs: visible.map((o, k): NamedTensor => ({ name: outNames[k]!, node: o.node })),
    state: statePairs.map((s) => ({ name: inputNames[s.input]!, node: graph.inputs[s.input]! as Node })),
  };
  const { plan, kernels } = emitPlan(schedule, memory, target, io);
  validateDispatches(plan, target);
  return { plan, graph, schedule, memory, kernels, totals: totalsOf(plan, kernels, memory), target, inputNames, stateInputs: stateIdx };
}

export function compileGraph(graph: Graph, options: CompileGraphOptions = {}): ExecutionPlan {
  return lowerGraph(graph, options).plan;
}
