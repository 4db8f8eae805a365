// Typed free functions: tensors made from nothing (constants, ramps) and the ops of several
// tensors (where, concat, matmul) that read better as functions than as methods.
import type { DType } from "../ir/dtype.js";
import type { Broadcast3, Check, Dim, MatMul, Ok, Shape } from "./shape-types.js";
import type { Concat } from "./layout-types.js";
import { type AnyTensor, broadcastOperands, emit, fill as fillShape, fmtT, resolveShape } from "./emit.js";
import { concat as concatRt } from "./layout.js";
import { matmul as matmulRt } from "./reduce.js";
import { Tensor, type DOf, type OperandShape, type SOf } from "./tensor.js";
import { DTypeError } from "../errors.js";
import { callSite } from "../trace/site.js";

/** `value` in every element of `shape` (f32 unless told). */
export function fill<const S extends readonly Dim[], D extends DType = "f32">(shape: S, value: number, dtype?: D): Tensor<[...S], D> {
  return fillShape(resolveShape("fill", shape), value, dtype ?? "f32") as never;
}

export function zeros<const S extends readonly Dim[], D extends DType = "f32">(shape: S, dtype?: D): Tensor<[...S], D> {
  return fill(shape, 0, dtype);
}

export function ones<const S extends readonly Dim[], D extends DType = "f32">(shape: S, dtype?: D): Tensor<[...S], D> {
  return fill(shape, 1, dtype);
}

/** A scalar tensor (shape []). */
export function scalar<D extends DType = "f32">(value: number, dtype?: D): Tensor<[], D> {
  return emit("constant", [], { value, dtype: dtype ?? "f32" }) as never;
}

/** Each element's index along `axis` (i32 unless told). */
export function iota<const S extends readonly Dim[], D extends DType = "i32">(shape: S, axis: number, dtype?: D): Tensor<[...S], D> {
  const s = resolveShape("iota", shape);
  const a = axis < 0 ? axis + s.length : axis;
  return emit("iota", [], { shape: s, axis: a, dtype: dtype ?? "i32" }) as never;
}

/** 0, 1, …, n−1 (i32 unless told). */
export function arange<const N extends Dim, D extends DType = "i32">(n: N, dtype?: D): Tensor<[N], D> {
  return iota([n], 0, dtype) as never;
}

type DTypeOf<A, B> = A extends Tensor<Shape, infer D> ? D : B extends Tensor<Shape, infer D> ? D : never;

/** `a` where `cond`, else `b`; all three broadcast together; a number takes the other's dtype. */
export function where<C extends Shape, A extends Tensor | number, B extends Tensor | number>(
  cond: Tensor<C, "bool">,
  a: A & Check<Broadcast3<C, OperandShape<A>, OperandShape<B>>, "where">,
  b: B,
): Tensor<Ok<Broadcast3<C, OperandShape<A>, OperandShape<B>>>, DTypeOf<A, B>> {
  const vals = [a, b] as unknown as (AnyTensor | number)[];
  const [x, y] = broadcastOperands("where", ...vals);
  if (x!.dtype !== y!.dtype) throw new DTypeError(`where: branches differ in dtype: ${fmtT(x!)} and ${fmtT(y!)}`, "where", callSite());
  const [c, xb, yb] = broadcastOperands("where", cond as unknown as AnyTensor, x!, y!);
  return emit("where", [c!, xb!, yb!]) as never;
}

/** `a @ b` (see Tensor.matmul). */
export function matmul<SA extends Shape, SB extends Shape, D extends DType>(
  a: Tensor<SA, D>,
  b: Tensor<SB, D> & Check<MatMul<SA, SB>, "matmul">,
): Tensor<Ok<MatMul<SA, SB>>, D> {
  return matmulRt(a as unknown as AnyTensor, b as unknown as AnyTensor) as never;
}

type ShapesOf<L extends readonly Tensor[]> = { -readonly [K in keyof L]: SOf<L[K]> };

/** Tensors joined along `axis` (default 0): other dimensions equal, the axis sizes added. */
export function concat<const L extends readonly Tensor[], const A extends number = 0>(
  xs: L & Check<Concat<ShapesOf<L>, A>, "concat">,
  axis?: A,
): Tensor<Ok<Concat<ShapesOf<L>, A>>, DOf<L[0]>> {
  return concatRt(xs as unknown as readonly AnyTensor[], axis ?? 0) as never;
}
