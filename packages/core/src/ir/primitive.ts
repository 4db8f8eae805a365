// The primitive record: everything the system knows about one op, in one place — its shape
// rule, its float64 reference, its VJP rule and its lowering hint. Built-in primitives live
// under src/prims/ (one file per family); library authors add their own with
// `registerPrimitive`, through the same interface (the `custom` op mechanism).
import type { DType } from "./dtype.js";
import type { Attrs, Graph, Node } from "./node.js";
import type { GraphBuilder } from "./builder.js";

/** What a shape rule sees of each input. */
export interface TypeInfo {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export interface EvalContext {
  /** "f64": exact float64 reference. "f32": every f32 result rounded with Math.fround, every f16 result to half. */
  readonly mode: "f64" | "f32";
  /** Evaluates a sub-graph (bodies of `call` nodes) in the same mode. */
  evaluateGraph(graph: Graph, inputs: readonly Float64Array[]): Float64Array[];
}

export type PrimitiveKind =
  | "source"
  | "elementwise"
  | "reduce"
  | "matmul"
  | "layout"
  | "gather"
  | "scatter"
  | "random"
  | "call"
  | "custom";

export interface Primitive<A extends Attrs = Attrs> {
  readonly name: string;
  readonly kind: PrimitiveKind;
  /** Number of inputs; undefined means any number (concat). Checked by the builder. */
  readonly arity?: number;
  /** Shape and dtype of the result; throws ShapeError / DTypeError (the builder adds the call site). */
  infer(inputs: readonly TypeInfo[], attrs: A): { shape: number[]; dtype: DType };
  /**
   * Float64 reference, row-major, one Float64Array per value for every dtype (bool = 0/1).
   * Integer results wrap as on the GPU (i32 via `|0`, u32 via `>>>0`). Results need not be
   * rounded to f32: the interpreter does that in its "f32" mode.
   */
  evaluate(inputs: readonly Float64Array[], node: Node, ctx: EvalContext): Float64Array;
  /**
   * Cotangent for each input given the output cotangent `ct`, written in primitives on `b`
   * (so the rule can itself be differentiated). `null` means zero / no gradient (integer,
   * bool and index inputs, or an input the output does not depend on smoothly).
   * Absent: the op is not differentiable; vjp throws if a gradient must flow through it.
   */
  vjp?(ct: Node, node: Node, b: GraphBuilder): (Node | null)[];
  /** Elementwise ops: a WGSL expression over the argument expressions (bool values as WGSL `bool`). */
  wgsl?: (args: string[], node: Node) => string;
  /** WGSL functions the `wgsl` expression calls (e.g. `df_erf`), emitted once per module. */
  readonly wgslFunctions?: string;
}

const registry = new Map<string, Primitive<any>>();

/** Adds a primitive. Re-registering a name throws unless `replace` is set (tests, hot reload). */
export function registerPrimitive<A extends Attrs>(p: Primitive<A>, replace = false): Primitive<A> {
  if (registry.has(p.name) && !replace) throw new Error(`registerPrimitive: "${p.name}" is already registered`);
  registry.set(p.name, p);
  return p;
}

/** The record for `name`, or undefined. */
export function findPrimitive(name: string): Primitive<any> | undefined {
  return registry.get(name);
}

/** The record for `name`; throws naming the known ops if there is none. */
export function getPrimitive(name: string): Primitive<any> {
  const p = registry.get(name);
  if (!p) throw new Error(`unknown primitive "${name}" (known: ${[...registry.keys()].sort().join(", ")})`);
  return p;
}

/** All registered primitives, in registration order. */
export function listPrimitives(): Primitive<any>[] {
  return [...registry.values()];
}
