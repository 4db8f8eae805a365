// The reference interpreter: evaluates any graph on the CPU, in float64 ("f64", the oracle of
// every test) or rounding every f32 result with Math.fround and every f16 result to half
// ("f32", to mimic the device). Deterministic; frees each value after its last use.
import "../prims/index.js";
import type { Graph, Node } from "../ir/node.js";
import type { EvalContext } from "../ir/primitive.js";
import { getPrimitive } from "../ir/registry.js";
import { roundFor, wrapInt, isFloat } from "../ir/dtype.js";
import { fmtShape, sameShape, sizeOf } from "../ir/shapes.js";
import { printNode } from "../ir/print.js";
import { ShapeError } from "../errors.js";

export type InterpretMode = "f64" | "f32";

/** An input value: a flat row-major array, or one with its shape (checked against the input). */
export type InputValue = ArrayLike<number> | { readonly data: ArrayLike<number>; readonly shape: readonly number[] };

export interface InterpretOptions {
  readonly mode?: InterpretMode;
}

/** Evaluates `graph` on `inputs` (one per graph input); returns one Float64Array per output. */
export function interpret(graph: Graph, inputs: readonly InputValue[], opts: InterpretOptions = {}): Float64Array[] {
  const mode = opts.mode ?? "f64";
  if (inputs.length !== graph.inputs.length) {
    throw new ShapeError(`interpret: the graph takes ${graph.inputs.length} inputs, found ${inputs.length}`, "interpret");
  }
  const values = new Map<Node, Float64Array>();
  graph.inputs.forEach((n, i) => values.set(n, toValue(n, inputs[i]!, mode)));
  return run(graph, values, mode);
}

function toValue(n: Node, v: InputValue, mode: InterpretMode): Float64Array {
  const flat = typeof (v as ArrayLike<number>).length === "number";
  const data = flat ? (v as ArrayLike<number>) : (v as { data: ArrayLike<number> }).data;
  const name = JSON.stringify(String(n.attrs.name));
  if (!flat && "shape" in v && !sameShape(v.shape, n.shape)) {
    throw new ShapeError(`interpret: input ${name} must have shape ${fmtShape(n.shape)}, found ${fmtShape(v.shape)}`, "interpret");
  }
  if (data.length !== sizeOf(n.shape)) {
    throw new ShapeError(`interpret: input ${name} (${n.dtype}${fmtShape(n.shape)}) needs ${sizeOf(n.shape)} values, found ${data.length}`, "interpret");
  }
  const out = Float64Array.from(data);
  finish(n, out, mode);
  return out;
}

/** Wraps integers and, in "f32" mode, rounds floats to their storage precision, in place. */
function finish(n: Node, x: Float64Array, mode: InterpretMode): void {
  if (!isFloat(n.dtype)) {
    for (let i = 0; i < x.length; i++) x[i] = wrapInt(n.dtype, x[i]!);
    return;
  }
  const round = mode === "f32" ? roundFor(n.dtype) : undefined;
  if (round) for (let i = 0; i < x.length; i++) x[i] = round(x[i]!);
}

function run(graph: Graph, values: Map<Node, Float64Array>, mode: InterpretMode): Float64Array[] {
  const ctx: EvalContext = {
    mode,
    evaluateGraph: (g, xs) => {
      const m = new Map<Node, Float64Array>();
      g.inputs.forEach((n, i) => m.set(n, xs[i]!));
      return run(g, m, mode);
    },
  };
  // last use of each value, so big graphs do not hold every intermediate at once
  const lastUse = new Map<Node, number>();
  graph.nodes.forEach((n, k) => n.inputs.forEach((i) => lastUse.set(i, k)));
  const keep = new Set(graph.outputs);

  graph.nodes.forEach((n, k) => {
    if (values.has(n)) return;
    if (n.op === "input") throw new ShapeError(`interpret: node %${n.id} is an input not listed in the graph's inputs`, "interpret");
    const xs = n.inputs.map((i) => values.get(i)!);
    let out = getPrimitive(n.op).evaluate(xs, n, ctx);
    if (out.length !== sizeOf(n.shape)) {
      throw new Error(`interpret: "${n.op}" produced ${out.length} values for ${n.dtype}${fmtShape(n.shape)}\n    ${printNode(n)}`);
    }
    if (xs.includes(out)) out = out.slice(); // rounding in place must not touch an input's value
    finish(n, out, mode);
    values.set(n, out);
    for (const i of n.inputs) if (lastUse.get(i) === k && !keep.has(i)) values.delete(i);
  });
  const seen = new Set<Float64Array>();
  return graph.outputs.map((o) => {
    const v = values.get(o)!;
    if (seen.has(v)) return v.slice();
    seen.add(v);
    return v;
  });
}
