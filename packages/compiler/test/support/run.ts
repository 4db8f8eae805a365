// Running a compiled graph on the GPU with float64 inputs, and comparing it with the float64
// interpreter: the reference comparison every compiler test uses. Inputs are rounded to their
// dtype first (f32, f16, integer wrap) so both sides see identical values.
import { interpret, roundF16, type DType, type Graph } from "@dorafuse/core";
import { f16ToF32, loadPlan, type Device, type HostArray } from "@dorafuse/runtime";
import { lowerGraph, validateMemory, type CompileGraphOptions, type LoweredGraph } from "@dorafuse/compiler";
import { relErr } from "../../../core/test/support/numeric.js";
import type { Rng } from "../../../core/test/support/random.js";

/** A host array of `dtype` holding `values` (the compiler's own conversion). */
import { toHostArray as toHost } from "../../src/host.js";
export { toHost };

export function fromHost(dtype: DType, data: HostArray): Float64Array {
  if (dtype === "f16") return Float64Array.from(f16ToF32(data as Uint16Array));
  return Float64Array.from(data as ArrayLike<number>);
}

/** The value the device stores for each of `values` in `dtype`. */
export function roundTo(dtype: DType, values: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(values);
  for (let i = 0; i < out.length; i++) {
    const v = out[i]!;
    out[i] = dtype === "f32" ? Math.fround(v) : dtype === "f16" ? roundF16(v) : dtype === "i32" ? v | 0 : dtype === "u32" ? v >>> 0 : v ? 1 : 0;
  }
  return out;
}

/** Random values for an input of `dtype`: floats in [lo, hi) away from zero, small integers, bools. */
export function randomInput(rng: Rng, dtype: DType, shape: readonly number[], range: [number, number] = [-2, 2]): Float64Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (dtype === "bool") out[i] = rng.next() < 0.5 ? 1 : 0;
    else if (dtype === "i32") out[i] = rng.int(-20, 20);
    else if (dtype === "u32") out[i] = rng.int(0, 40);
    else {
      let v = rng.uniform(range[0], range[1]);
      if (Math.abs(v) < 1e-3) v = 0.5;
      out[i] = v;
    }
  }
  return roundTo(dtype, out);
}

/** Runs a lowered graph's plan once; returns every output (in plan order) as float64. */
export async function runLowered(device: Device, lowered: LoweredGraph, inputs: readonly ArrayLike<number>[]): Promise<Float64Array[]> {
  const exe = await loadPlan(device, lowered.plan);
  try {
    const byName: Record<string, HostArray> = {};
    lowered.graph.inputs.forEach((n, i) => {
      const host = toHost(n.dtype, inputs[i]!);
      if (lowered.stateInputs.has(i)) void exe.writeState(lowered.inputNames[i]!, host);
      else byName[lowered.inputNames[i]!] = host;
    });
    const result = await exe.run(byName);
    const read = await result.readAll();
    return lowered.plan.outputs.map((o) => fromHost(o.dtype, read[o.name]!));
  } finally {
    exe.dispose();
  }
}

export interface CheckOptions extends CompileGraphOptions {
  /** Relative tolerance for float outputs (integers and bools must match exactly). */
  tol?: number;
}

/**
 * Compiles `graph`, validates its memory plan, runs it on `inputs`, and compares every output
 * with the float64 interpreter. Returns the lowered graph for further assertions.
 */
export async function expectMatchesInterpreter(device: Device, graph: Graph, inputs: readonly Float64Array[], opts: CheckOptions = {}): Promise<LoweredGraph> {
  const lowered = lowerGraph(graph, opts);
  validateMemory(lowered.memory);
  const got = await runLowered(device, lowered, inputs);
  const want = interpret(graph, inputs, { mode: "f64" });
  const mode = opts.fusion === false ? "unfused" : "fused";
  graph.outputs.forEach((o, k) => {
    const g = got[k]!;
    const w = want[k]!;
    const what = `output ${k} (%${o.id} ${o.op} ${o.dtype}[${o.shape}], ${mode})`;
    if (o.dtype === "f32" || o.dtype === "f16") {
      const tol = opts.tol ?? (o.dtype === "f16" ? 2e-2 : 2e-5);
      // infinities and NaN must match exactly; the relative error is over the finite rest
      for (let i = 0; i < w.length; i++) {
        if (!Number.isFinite(w[i]!) && !Object.is(g[i], w[i]) && !(Number.isNaN(g[i]!) && Number.isNaN(w[i]!))) {
          throw new Error(`${what}: element ${i} is ${g[i]}, expected ${w[i]}`);
        }
      }
      const finite = w.map((v) => (Number.isFinite(v) ? 1 : 0));
      const e = relErr(g.map((v, i) => (finite[i] ? v : 0)), w.map((v, i) => (finite[i] ? v : 0)));
      if (!(e <= tol)) {
        let worst = 0;
        for (let i = 0; i < w.length; i++) if (Math.abs(g[i]! - w[i]!) > Math.abs(g[worst]! - w[worst]!)) worst = i;
        throw new Error(`${what}: relative error ${e.toExponential(3)} > ${tol}; worst element ${worst}: got ${g[worst]}, expected ${w[worst]}`);
      }
    } else {
      for (let i = 0; i < w.length; i++) {
        if (g[i] !== w[i]) throw new Error(`${what}: element ${i} is ${g[i]}, expected ${w[i]}`);
      }
    }
  });
  return lowered;
}

/** The graph compiled with fusion and without, each compared with the interpreter. */
export async function expectBothSchedules(device: Device, graph: Graph, inputs: readonly Float64Array[], opts: CheckOptions = {}): Promise<{ fused: LoweredGraph; unfused: LoweredGraph }> {
  const fused = await expectMatchesInterpreter(device, graph, inputs, { ...opts, fusion: true });
  const unfused = await expectMatchesInterpreter(device, graph, inputs, { ...opts, fusion: false });
  return { fused, unfused };
}

/** Random inputs for every input of `graph`, with per-input value ranges by name. */
export function randomInputs(rng: Rng, graph: Graph, ranges: Readonly<Record<string, [number, number]>> = {}): Float64Array[] {
  return graph.inputs.map((n) => randomInput(rng, n.dtype, n.shape, ranges[String(n.attrs.name)]));
}
