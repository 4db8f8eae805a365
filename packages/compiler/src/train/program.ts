// A traced function lowered into a CompiledManifest: the plan plus the interface the runtime's
// `loadCompiled` needs to call it — each argument leaf with its path in the argument trees
// and the name errors use for it, each result leaf with its path, and each state tensor with
// its checkpoint name and role. trainStep, evalStep and `dorafuse compile` all go through
// here, so a step compiled in process and one compiled ahead of time are the same program.
//
// Checkpoint names are flat and dotted: core's leaf paths with indices as segments
// (`params.blocks.0.attn.q.loraA`, `opt.mu.blocks.0.attn.q.loraA`, `opt.count`), the form
// adapters name layers in, so PEFT export can find each layer's factors by name.
import { readFileSync } from "node:fs";
import { flatten, graphRef, HostTensor, leafPaths, type TreeDef } from "@dorafuse/core";
import type { CompiledManifest, HostTensor as FileTensor, ManifestState, ManifestTensor, StateRole } from "@dorafuse/runtime";
import { lowerCached } from "../cache.js";
import type { CompileGraphOptions, LoweredGraph } from "../compile-graph.js";
import { toFileTensor } from "../host.js";
import type { Target } from "../limits.js";
import { traceCall } from "../trace-call.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { name: string; version: string };
/** "@dorafuse/compiler 0.1.0": recorded in every manifest. */
export const COMPILER_VERSION = `${pkg.name} ${pkg.version}`;

export type GraphOptions = Pick<CompileGraphOptions, "fusion" | "optimize" | "limits" | "maxFusedRow">;

export interface ProgramOptions extends GraphOptions {
  entry: string;
  kind: CompiledManifest["kind"];
  target: Target;
  /** Argument names (the roots of input and checkpoint names). */
  names: readonly string[];
  /** Result key → index of the argument it updates. */
  state?: Readonly<Record<string, number>>;
  /** The role of each state argument (default "state"). */
  roles?: Readonly<Record<number, StateRole>>;
  dims?: Readonly<Record<string, number>>;
  /** Metric names, read after the trace (train and eval steps). */
  metrics?: () => readonly string[];
  adapter?: CompiledManifest["adapter"];
}

export interface Program {
  manifest: CompiledManifest;
  lowered: LoweredGraph;
  /** Each argument's tree, as traced. */
  argDefs: TreeDef[];
}

/** The path of every leaf of a tree as its keys and indices. */
export function keyPaths(def: TreeDef, prefix: (string | number)[] = []): (string | number)[][] {
  if (def.kind === "leaf") return [prefix];
  if (def.kind === "array") return def.items.flatMap((d, i) => keyPaths(d, [...prefix, i]));
  if (def.kind === "object") return def.items.flatMap((d, i) => keyPaths(d, [...prefix, def.keys[i]!]));
  return [];
}

export const dotted = (path: readonly (string | number)[]): string => path.join(".");

export function lowerProgram(fn: (...args: never[]) => unknown, specs: readonly unknown[], o: ProgramOptions): Program {
  const t = traceCall(fn, specs, { ...(o.state ? { state: o.state } : {}), names: o.names, ...(o.dims ? { dims: o.dims } : {}) });
  // the one place undefined options are dropped, so defaults (and cache keys) are compileGraph's
  const graphOptions = { fusion: o.fusion, optimize: o.optimize, limits: o.limits, maxFusedRow: o.maxFusedRow };
  const defined = Object.fromEntries(Object.entries(graphOptions).filter(([, v]) => v !== undefined)) as GraphOptions;
  const { lowered } = lowerCached(t.graph, { ...defined, target: o.target, state: t.pairs, outputNames: t.outNames });
  const stateArgs = new Set(Object.values(o.state ?? {}));
  const args: ManifestTensor[] = [];
  const state: ManifestState[] = [];
  let call = 0;
  t.argDefs.forEach((def, arg) => {
    const name = o.names[arg] ?? `arg${arg}`;
    const labels = leafPaths(def, name);
    keyPaths(def).forEach((path, m) => {
      const index = t.argStart[arg]! + m;
      const node = lowered.graph.inputs[index]!;
      const tensor = { name: lowered.inputNames[index]!, shape: [...node.shape], dtype: node.dtype };
      if (stateArgs.has(arg)) state.push({ ...tensor, key: dotted([name, ...path]), role: o.roles?.[arg] ?? "state" });
      else args.push({ ...tensor, label: labels[m]!, path: [call, ...path] });
    });
    if (!stateArgs.has(arg)) call++;
  });
  const { plan } = lowered;
  const results = keyPaths(t.outDef).map((path, k): ManifestTensor => {
    const out = plan.outputs.find((p) => p.name === t.outNames[k])!;
    return { name: out.name, label: leafPaths(t.outDef, "result")[k]!, path, shape: [...out.shape], dtype: out.dtype };
  });
  const metrics = o.metrics?.();
  const manifest: CompiledManifest = {
    format: "dorafuse.compiled",
    version: 1,
    entry: o.entry,
    kind: o.kind,
    compiler: COMPILER_VERSION,
    fingerprint: graphRef(t.graph).fingerprint,
    compiledFor: { adapter: o.target.adapter, limits: { ...o.target.limits }, features: o.target.f16 ? ["shader-f16"] : [] },
    requires: { limits: { ...(plan.requiredLimits ?? {}) }, features: [...(plan.requiredFeatures ?? [])] },
    plan,
    args,
    results,
    state,
    ...(metrics ? { stats: { output: results.find((r) => r.path.join() === "stats")!.name, names: [...metrics] } } : {}),
    ...(o.adapter ? { adapter: o.adapter } : {}),
  };
  return { manifest, lowered, argDefs: t.argDefs };
}

/** Host trees of the state arguments (in argument order) as checkpoint tensors named like the manifest's state. */
export function stateTensors(manifest: CompiledManifest, trees: readonly unknown[]): Record<string, FileTensor> {
  const leaves = trees.flatMap((tree) => flatten(tree, (v): v is HostTensor => v instanceof HostTensor)[0]);
  const saved = manifest.state;
  const out: Record<string, FileTensor> = {};
  saved.forEach((s, i) => {
    const h = leaves[i]!;
    if (s.role !== "step" && s.role !== "key") out[s.key] = toFileTensor(h);
  });
  return out;
}

/** Whether every leaf of a tree holds data (host tensors), so it can be the initial state. */
export function allHost(tree: unknown): boolean {
  const [leaves] = flatten(tree, (v): v is unknown => v instanceof HostTensor || (typeof v === "object" && v !== null && "shape" in v && "dtype" in v && !Array.isArray(v)));
  return leaves.length > 0 && leaves.every((l) => l instanceof HostTensor);
}
