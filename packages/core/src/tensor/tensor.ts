// The typed tensor. At run time a Tensor is a tracer: a graph node and the trace it belongs
// to; every method emits primitives. At type level it carries its shape and dtype, and each
// method computes its result's shape as a type (shape-types.ts, layout-types.ts). A call the
// types can refute is a tsc error at the argument; what they cannot decide (a `number`
// dimension) is checked by the same rule at trace time.
import type { DType } from "../ir/dtype.js";
import type { Node } from "../ir/node.js";
import type { TraceContext } from "../trace/context.js";
import type { Broadcast, Check, Dim, MatMul, Ok, Shape, BroadcastTo as BroadcastToT } from "./shape-types.js";
import type {
  Axes,
  ExpandDims,
  Gather,
  Reduce,
  Reshape,
  Slice,
  SliceRange,
  Squeeze,
  SwapLast,
  Transpose,
} from "./layout-types.js";
import type { FloatDType, NumericDType } from "./dtypes.js";
import * as E from "./emit.js";
import * as L from "./layout.js";
import * as R from "./reduce.js";

/** A tensor or a number (a scalar of the tensor's dtype) as the other operand of a binary op. */
export type Operand<D extends DType> = Tensor<Shape, D> | number;
/** The shape of an operand: a number is a scalar. */
export type OperandShape<O> = O extends Tensor<infer S, DType> ? S : [];
type Bin<S extends Shape, O> = Broadcast<S, OperandShape<O>>;

/** The shape and dtype of a tensor type, read from its phantom field (keeps Tensor covariant). */
export type SOf<X extends { readonly __type: { readonly shape: Shape } }> = X["__type"]["shape"];
export type DOf<X extends { readonly __type: { readonly dtype: DType } }> = X["__type"]["dtype"];

type T = E.AnyTensor;
const t = (x: unknown): T => x as T;
const op = (x: Operand<DType>): T | number => x as T | number;

export class Tensor<out S extends Shape = Shape, out D extends DType = DType> {
  /** Type-level only: the shape and dtype this tensor has in the types. */
  declare readonly __type: { readonly shape: S; readonly dtype: D };

  constructor(
    /** The graph node this tensor stands for. */
    readonly node: Node,
    /** The trace it belongs to. */
    readonly ctx: TraceContext,
  ) {}

  /** The concrete shape (named dimensions bound). */
  get shape(): readonly number[] {
    return this.node.shape;
  }
  get dtype(): D {
    return this.node.dtype as D;
  }
  get rank(): number {
    return this.node.shape.length;
  }
  get size(): number {
    return this.node.shape.reduce((n, d) => n * d, 1);
  }

  toString(): string {
    return `Tensor(${this.node.dtype}[${this.node.shape.join(",")}], %${this.node.id})`;
  }
  /** console.log shows the type, not the whole graph behind the node. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  // ---- elementwise arithmetic (broadcasting) ------------------------------------------

  add<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "add">): Tensor<Ok<Bin<SOf<Self>, O>>, DOf<Self>> {
    return E.binary("add", t(this), op(other)) as never;
  }
  sub<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "sub">): Tensor<Ok<Bin<SOf<Self>, O>>, DOf<Self>> {
    return E.binary("sub", t(this), op(other)) as never;
  }
  mul<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "mul">): Tensor<Ok<Bin<SOf<Self>, O>>, DOf<Self>> {
    return E.binary("mul", t(this), op(other)) as never;
  }
  div<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "div">): Tensor<Ok<Bin<SOf<Self>, O>>, DOf<Self>> {
    return E.binary("div", t(this), op(other)) as never;
  }
  pow<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "pow">): Tensor<Ok<Bin<SOf<Self>, O>>, DOf<Self>> {
    return E.binary("pow", t(this), op(other)) as never;
  }
  /** Elementwise maximum. */
  maximum<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "maximum">): Tensor<Ok<Bin<SOf<Self>, O>>, DOf<Self>> {
    return E.binary("max", t(this), op(other)) as never;
  }
  /** Elementwise minimum. */
  minimum<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "minimum">): Tensor<Ok<Bin<SOf<Self>, O>>, DOf<Self>> {
    return E.binary("min", t(this), op(other)) as never;
  }

  // ---- comparisons and logic (→ bool) --------------------------------------------------

  eq<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "eq">): Tensor<Ok<Bin<SOf<Self>, O>>, "bool"> {
    return E.binary("eq", t(this), op(other)) as never;
  }
  ne<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "ne">): Tensor<Ok<Bin<SOf<Self>, O>>, "bool"> {
    return E.binary("ne", t(this), op(other)) as never;
  }
  lt<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "lt">): Tensor<Ok<Bin<SOf<Self>, O>>, "bool"> {
    return E.binary("lt", t(this), op(other)) as never;
  }
  le<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "le">): Tensor<Ok<Bin<SOf<Self>, O>>, "bool"> {
    return E.binary("le", t(this), op(other)) as never;
  }
  gt<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "gt">): Tensor<Ok<Bin<SOf<Self>, O>>, "bool"> {
    return E.binary("gt", t(this), op(other)) as never;
  }
  ge<Self extends Tensor, O extends Operand<DOf<Self>>>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "ge">): Tensor<Ok<Bin<SOf<Self>, O>>, "bool"> {
    return E.binary("ge", t(this), op(other)) as never;
  }
  and<Self extends Tensor, O extends Operand<"bool">>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "and">): Tensor<Ok<Bin<SOf<Self>, O>>, "bool"> {
    return E.binary("and", t(this), op(other)) as never;
  }
  or<Self extends Tensor, O extends Operand<"bool">>(this: Self, other: O & Check<Bin<SOf<Self>, O>, "or">): Tensor<Ok<Bin<SOf<Self>, O>>, "bool"> {
    return E.binary("or", t(this), op(other)) as never;
  }
  not<Self extends Tensor<Shape, "bool">>(this: Self): Tensor<SOf<Self>, "bool"> {
    return E.unary("not", t(this)) as never;
  }

  // ---- unary ----------------------------------------------------------------------------

  neg<Self extends Tensor<Shape, NumericDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("neg", t(this)) as never;
  }
  abs<Self extends Tensor<Shape, NumericDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("abs", t(this)) as never;
  }
  sign<Self extends Tensor<Shape, NumericDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("sign", t(this)) as never;
  }
  square<Self extends Tensor<Shape, NumericDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.binary("mul", t(this), t(this)) as never;
  }
  exp<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("exp", t(this)) as never;
  }
  log<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("log", t(this)) as never;
  }
  sin<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("sin", t(this)) as never;
  }
  cos<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("cos", t(this)) as never;
  }
  tanh<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("tanh", t(this)) as never;
  }
  sqrt<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("sqrt", t(this)) as never;
  }
  rsqrt<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("rsqrt", t(this)) as never;
  }
  /** 1 / x */
  recip<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("recip", t(this)) as never;
  }
  floor<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("floor", t(this)) as never;
  }
  ceil<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("ceil", t(this)) as never;
  }
  erf<Self extends Tensor<Shape, FloatDType>>(this: Self): Tensor<SOf<Self>, DOf<Self>> {
    return E.unary("erf", t(this)) as never;
  }
  /** Conversion with WGSL semantics (float → int truncates, x → bool is x ≠ 0). */
  cast<Self extends Tensor, D2 extends DType>(this: Self, dtype: D2): Tensor<SOf<Self>, D2> {
    return ((dtype as DType) === this.dtype ? this : E.emit("cast", [t(this)], { dtype })) as never;
  }

  // ---- reductions -----------------------------------------------------------------------

  /** Sum over `axis` (all axes when omitted); negative axes count from the end. */
  sum<Self extends Tensor<Shape, NumericDType>, const A extends Axes = undefined, K extends boolean = false>(
    this: Self,
    axis?: A & Check<Reduce<SOf<Self>, A, K>, "sum">,
    keepDims?: K,
  ): Tensor<Ok<Reduce<SOf<Self>, A, K>>, DOf<Self>> {
    return R.sum(t(this), axis as Axes, keepDims) as never;
  }
  mean<Self extends Tensor<Shape, FloatDType>, const A extends Axes = undefined, K extends boolean = false>(
    this: Self,
    axis?: A & Check<Reduce<SOf<Self>, A, K>, "mean">,
    keepDims?: K,
  ): Tensor<Ok<Reduce<SOf<Self>, A, K>>, DOf<Self>> {
    return R.mean(t(this), axis as Axes, keepDims) as never;
  }
  max<Self extends Tensor<Shape, NumericDType>, const A extends Axes = undefined, K extends boolean = false>(
    this: Self,
    axis?: A & Check<Reduce<SOf<Self>, A, K>, "max">,
    keepDims?: K,
  ): Tensor<Ok<Reduce<SOf<Self>, A, K>>, DOf<Self>> {
    return R.max(t(this), axis as Axes, keepDims) as never;
  }
  min<Self extends Tensor<Shape, NumericDType>, const A extends Axes = undefined, K extends boolean = false>(
    this: Self,
    axis?: A & Check<Reduce<SOf<Self>, A, K>, "min">,
    keepDims?: K,
  ): Tensor<Ok<Reduce<SOf<Self>, A, K>>, DOf<Self>> {
    return R.min(t(this), axis as Axes, keepDims) as never;
  }
  /** Index (i32) of the first maximum along `axis`. */
  argmax<Self extends Tensor<Shape, NumericDType>, const A extends number, K extends boolean = false>(
    this: Self,
    axis: A & Check<Reduce<SOf<Self>, A, K>, "argmax">,
    keepDims?: K,
  ): Tensor<Ok<Reduce<SOf<Self>, A, K>>, "i32"> {
    return R.argmax(t(this), axis as number, keepDims) as never;
  }

  // ---- matmul and layout ----------------------------------------------------------------

  /** `[...B, m, k] @ [...B, k, n] → [...B, m, n]`, batch dimensions broadcast. */
  matmul<Self extends Tensor, S2 extends Shape>(this: Self, other: Tensor<S2, DOf<Self>> & Check<MatMul<SOf<Self>, S2>, "matmul">): Tensor<Ok<MatMul<SOf<Self>, S2>>, DOf<Self>> {
    return R.matmul(t(this), t(other)) as never;
  }
  /** Same elements, new shape; one entry may be -1 (inferred), names are bound dimensions. */
  reshape<Self extends Tensor, const S2 extends readonly Dim[]>(this: Self, shape: S2 & Check<Reshape<SOf<Self>, S2>, "reshape">): Tensor<Ok<Reshape<SOf<Self>, S2>>, DOf<Self>> {
    return L.reshape(t(this), shape as readonly Dim[]) as never;
  }
  /** Axes reordered: `out.shape[i] = shape[perm[i]]`; all reversed without `perm`. */
  transpose<Self extends Tensor, const P extends readonly number[] | undefined = undefined>(
    this: Self,
    perm?: P & Check<Transpose<SOf<Self>, P>, "transpose">,
  ): Tensor<Ok<Transpose<SOf<Self>, P>>, DOf<Self>> {
    return L.transpose(t(this), perm as readonly number[] | undefined) as never;
  }
  /** The last two axes swapped (numpy's `mT`). */
  mT<Self extends Tensor>(this: Self & Check<SwapLast<SOf<Self>>, "mT">): Tensor<Ok<SwapLast<SOf<Self>>>, DOf<Self>> {
    return L.swapLast(t(this)) as never;
  }
  /** A new axis of size 1 at `axis` (of the result). */
  expandDims<Self extends Tensor, const A extends number>(this: Self, axis: A & Check<ExpandDims<SOf<Self>, A>, "expandDims">): Tensor<Ok<ExpandDims<SOf<Self>, A>>, DOf<Self>> {
    return L.expandDims(t(this), axis as number) as never;
  }
  /** Removes axes of size 1. */
  squeeze<Self extends Tensor, const A extends number | readonly number[]>(this: Self, axis: A & Check<Squeeze<SOf<Self>, A>, "squeeze">): Tensor<Ok<Squeeze<SOf<Self>, A>>, DOf<Self>> {
    return L.squeeze(t(this), axis as number | readonly number[]) as never;
  }
  /** Broadcast to exactly `shape` (each dimension 1 or equal, right-aligned). */
  broadcastTo<Self extends Tensor, const S2 extends readonly Dim[]>(this: Self, shape: S2 & Check<BroadcastToT<SOf<Self>, S2>, "broadcastTo">): Tensor<Ok<BroadcastToT<SOf<Self>, S2>>, DOf<Self>> {
    return L.broadcastTo(t(this), shape as readonly Dim[]) as never;
  }
  /** Per-axis `[start, end]` ranges (`null`: whole axis; `[start]`: to the end). */
  slice<Self extends Tensor, const Rs extends readonly SliceRange[]>(this: Self, ranges: Rs & Check<Slice<SOf<Self>, Rs>, "slice">): Tensor<Ok<Slice<SOf<Self>, Rs>>, DOf<Self>> {
    return L.slice(t(this), ranges as readonly SliceRange[]) as never;
  }
  /** Rows along `axis` (default 0) picked by integer indices: `shape[:axis] ++ idx.shape ++ shape[axis+1:]`. */
  gather<Self extends Tensor, I extends Shape, const A extends number = 0>(
    this: Self,
    idx: Tensor<I, "i32" | "u32">,
    axis?: A & Check<Gather<SOf<Self>, I, A>, "gather">,
  ): Tensor<Ok<Gather<SOf<Self>, I, A>>, DOf<Self>> {
    return L.gather(t(this), t(idx), (axis as number | undefined) ?? 0) as never;
  }
}
