// compile(fn, specs, options): a traced function as a callable that runs on the GPU.
//
// The function is traced at the specs' shapes, compiled (passes, fusion, memory plan, WGSL)
// and loaded through @dorafuse/runtime. Calling it uploads the arguments, runs the whole plan
// as one command buffer and returns the outputs as GPU tensors: nothing is read back until
// asked (`await t.read()`, or `.run(...)` to read everything). Calls at new shapes trace and
// compile again, once per shape; graphs already compiled (same fingerprint, adapter and
// options) come from the cache.
//
// State: `state: { params: 0, opt: 1 }` says the function returns an object whose `params`
// and `opt` entries are the new values of arguments 0 and 1. Those arguments live on the GPU
// between calls (initialized from the values passed at compile time, when they are host
// tensors), are updated in place by every call, and are left out of the call's arguments and
// results; `getState(i)` reads one back, `setState(i, tree)` replaces it.
import { flatten, HostTensor, unflatten, type HostOf, type Tensor, type TreeDef } from "@dorafuse/core";
import { createDevice, loadPlan, Tensor as GpuTensor, type Device, type Executable, type HostArray } from "@dorafuse/runtime";
import { lowerCached } from "./cache.js";
import type { CompileGraphOptions, LoweredGraph } from "./compile-graph.js";
import { CompileError } from "./errors.js";
import { explainLowered } from "./explain.js";
import { fromHostArray, toHostArray } from "./host.js";
import { targetOf } from "./limits.js";
import { isArgLeaf, specTree, traceCall } from "./trace-call.js";

export interface CompileOptions extends Omit<CompileGraphOptions, "target" | "state" | "outputNames"> {
  /** The device to run on; default: one shared device from createDevice(). */
  device?: Device;
  /** Result key → index of the argument whose new value it is. */
  state?: Readonly<Record<string, number>>;
  /** Argument names, used in the plan's tensor names (default arg0, arg1, …). */
  names?: readonly string[];
  /** Values of named dimensions in the specs. */
  dims?: Readonly<Record<string, number>>;
}

type Leaf = HostTensor | GpuTensor;

/** A result tree with its tensors as GPU tensors. */
export type GpuOf<T> = T extends Tensor
  ? GpuTensor
  : T extends readonly unknown[]
    ? { -readonly [K in keyof T]: GpuOf<T[K]> }
    : T extends object
      ? { -readonly [K in keyof T]: GpuOf<T[K]> }
      : T;

/** The results a call returns: the function's result without the state entries. */
export type Visible<R, S> = [keyof S] extends [never] ? R : R extends object ? Omit<R, keyof S & keyof R> : R;

export interface CompiledFunction<R = unknown> {
  /** Runs on the non-state arguments; returns the outputs as GPU tensors (read what you need). */
  (...args: unknown[]): Promise<GpuOf<R>>;
  /** Runs and reads every output back as HostTensors. */
  run(...args: unknown[]): Promise<HostOf<R>>;
  /** The current value of state argument `arg`, read back as a tree of HostTensors. */
  getState(arg: number): Promise<unknown>;
  /** Replaces state argument `arg` (a tree of HostTensors or GPU tensors shaped like it). */
  setState(arg: number, tree: unknown): Promise<void>;
  /** The compiled graph for the shapes of the last call (or of the specs before any call). */
  readonly lowered: LoweredGraph;
  readonly device: Device;
  /** Traces, lowerings (cache misses) and cache hits so far. */
  readonly stats: { traces: number; compiles: number; cacheHits: number; calls: number };
  explain(): string;
  dispose(): void;
}

interface Entry {
  lowered: LoweredGraph;
  exe: Executable;
  /** Plan input name of each non-state argument leaf, in flatten order. */
  inputNames: string[];
  outNames: string[];
  outDef: TreeDef;
  /** For each state argument: its plan state names in flatten order and its tree. */
  state: Map<number, { names: string[]; def: TreeDef; leaves: { shape: readonly number[]; dtype: HostTensor["dtype"] }[] }>;
}

/** The options of `compile` that `lowerGraph` takes. */
function graphOptions(o: CompileOptions): CompileGraphOptions {
  const { fusion, optimize, limits, maxFusedRow } = o;
  return { ...(fusion !== undefined ? { fusion } : {}), ...(optimize !== undefined ? { optimize } : {}), ...(limits ? { limits } : {}), ...(maxFusedRow ? { maxFusedRow } : {}) };
}

let shared: Promise<Device> | undefined;
const defaultDevice = (): Promise<Device> => (shared ??= createDevice());

export async function compile<F extends (...args: never[]) => unknown, const S extends Readonly<Record<string, number>> = {}>(
  fn: F,
  specs: readonly unknown[],
  options: CompileOptions & { state?: S } = {},
): Promise<CompiledFunction<Visible<ReturnType<F>, S>>> {
  const device = options.device ?? (await defaultDevice());
  const target = targetOf(device);
  const stateArgs = new Map(Object.entries(options.state ?? {}).map(([key, arg]) => [arg, key]));
  const stats = { traces: 0, compiles: 0, cacheHits: 0, calls: 0 };
  const entries = new Map<string, Entry>();
  const argSpecs = specs.map(specTree);

  const prepare = async (allSpecs: readonly unknown[]): Promise<Entry> => {
    stats.traces++;
    const t = traceCall(fn, allSpecs, options);
    const outNames = t.outNames;
    const pairs = t.pairs;
    const inParts = t.argDefs;
    const inStart = t.argStart;
    const leavesIn = t.argLeaves;
    const { lowered, cached } = lowerCached(t.graph, { ...graphOptions(options), target, state: pairs, outputNames: outNames });
    if (cached) stats.cacheHits++;
    else stats.compiles++;
    const exe = await loadPlan(device, lowered.plan);
    const inputNames: string[] = [];
    const state: Entry["state"] = new Map();
    inParts.forEach((d, arg) => {
      const names = lowered.inputNames.slice(inStart[arg]!, inStart[arg]! + leavesIn[arg]!);
      if (stateArgs.has(arg)) {
        const nodes = lowered.graph.inputs.slice(inStart[arg]!, inStart[arg]! + leavesIn[arg]!);
        state.set(arg, { names, def: d, leaves: nodes.map((n) => ({ shape: n.shape, dtype: n.dtype })) });
      } else inputNames.push(...names);
    });
    return { lowered, exe, inputNames, outNames, outDef: t.outDef, state };
  };

  // entries are found by the shapes of the non-state arguments (state shapes never change)
  const keyOf = (leaves: readonly { shape: readonly unknown[]; dtype: string }[]) => leaves.map((l) => `${l.dtype}[${l.shape}]`).join(";");
  let current = await prepare(argSpecs);
  entries.set(keyOf(current.inputNames.map((n) => current.lowered.plan.inputs.find((t) => t.name === n)!)), current);

  const writeTree = async (entry: Entry, arg: number, tree: unknown) => {
    const st = entry.state.get(arg);
    if (!st) throw new CompileError(`argument ${arg} is not state (state arguments: ${[...stateArgs.keys()].join(", ") || "none"})`, "setState");
    const [leaves] = flatten(tree, isArgLeaf);
    if (leaves.length !== st.names.length) throw new CompileError(`state argument ${arg} has ${st.names.length} tensors, found ${leaves.length}`, "setState");
    await Promise.all(leaves.map((l, i) => entry.exe.writeState(st.names[i]!, l instanceof HostTensor ? toHostArray(l.dtype, l.data) : (l as GpuTensor))));
  };
  for (const [arg] of stateArgs) {
    const [leaves] = flatten(specs[arg], isArgLeaf);
    if (leaves.length && leaves.every((l) => l instanceof HostTensor || l instanceof GpuTensor)) await writeTree(current, arg, specs[arg]);
  }

  const select = async (args: readonly unknown[]): Promise<{ entry: Entry; leaves: Leaf[] }> => {
    const nonState = specs.map((_, i) => i).filter((i) => !stateArgs.has(i));
    if (args.length !== nonState.length) throw new CompileError(`expected ${nonState.length} arguments (the non-state ones: ${nonState.join(", ")}), found ${args.length}`, "compiled call");
    const full: unknown[] = [...argSpecs];
    nonState.forEach((i, k) => (full[i] = args[k]));
    const [given] = flatten(nonState.map((i) => full[i]), isArgLeaf);
    const key = keyOf(given);
    let entry = entries.get(key);
    if (!entry) {
      entry = await prepare(full.map((a, i) => (stateArgs.has(i) ? argSpecs[i] : specTree(a))));
      entries.set(key, entry);
    }
    if (entry !== current) {
      for (const st of current.state.values()) for (const name of st.names) await entry.exe.writeState(name, current.exe.state(name));
      current = entry;
    }
    const [leaves] = flatten(nonState.map((i) => full[i]), isArgLeaf);
    return { entry, leaves: leaves as Leaf[] };
  };

  const call = async (...args: unknown[]): Promise<unknown> => {
    const { entry, leaves } = await select(args);
    stats.calls++;
    const inputs: Record<string, HostArray | GpuTensor> = {};
    leaves.forEach((l, i) => (inputs[entry.inputNames[i]!] = l instanceof HostTensor ? toHostArray(l.dtype, l.data) : l));
    const result = await entry.exe.run(inputs);
    return unflatten(entry.outDef, entry.outNames.map((n) => result.outputs[n]));
  };

  const compiled = Object.assign(call, {
    run: async (...args: unknown[]) => {
      const out = await call(...args);
      const [leaves, def] = flatten(out, (v): v is GpuTensor => v instanceof GpuTensor);
      const hosts = await Promise.all(leaves.map(async (t) => {
        const h = fromHostArray(t.dtype, t.shape, await t.read());
        t.dispose();
        return h;
      }));
      return unflatten(def, hosts);
    },
    getState: async (arg: number) => {
      const st = current.state.get(arg);
      if (!st) throw new CompileError(`argument ${arg} is not state`, "getState");
      const hosts = await Promise.all(st.names.map(async (n, i) => fromHostArray(st.leaves[i]!.dtype, st.leaves[i]!.shape, await current.exe.readState(n))));
      return unflatten(st.def, hosts);
    },
    setState: (arg: number, tree: unknown) => writeTree(current, arg, tree),
    explain: () => explainLowered(current.lowered),
    dispose: () => {
      for (const e of entries.values()) e.exe.dispose();
      entries.clear();
    },
    stats,
    device,
  });
  Object.defineProperty(compiled, "lowered", { get: () => current.lowered });
  return compiled as unknown as CompiledFunction<Visible<ReturnType<F>, S>>;
}
