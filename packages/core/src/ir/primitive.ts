// The primitive record: everything the system knows about one op, in one place — its shape
// rule, its float64 reference, its VJP rule and its lowering hint. Built-in primitives live
// under src/prims/ (one file per family, gathered in the typed table prims/index.ts); library
// authors add their own with `registerPrimitive` (ir/registry.ts), through the same interface.
// This file holds only types, so primitives import nothing that imports them.
import type { DType } from "./dtype.js";
import type { Attrs, Graph, Node } from "./node.js";

/** What a VJP rule emits its nodes on: a GraphBuilder, seen through the one method rules use. */
export interface Emitter {
  emit(op: string, inputs: readonly Node[], attrs?: Attrs, site?: string): Node;
}

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
  vjp?(ct: Node, node: Node, b: Emitter): (Node | null)[];
  /** Elementwise ops: a WGSL expression over the argument expressions (bool values as WGSL `bool`). */
  wgsl?: (args: string[], node: Node) => string;
  /** WGSL functions the `wgsl` expression calls (e.g. `df_erf`), emitted once per module. */
  readonly wgslFunctions?: string;
}
