// Shapes as types. A shape is a tuple of dimensions; a dimension is
//   - a number literal (`16`): known now, checked by tsc;
//   - a string literal (`"batch"`): a named symbolic dimension, bound to a number when the
//     function is traced (`trace(fn, specs, { dims: { batch: 8 } })`). Two names are equal
//     only when they are the same name; a name never equals a literal other than 1;
//   - `number` (or `string`): unknown to the types. Rules let it through and the same rule
//     runs at trace time, where every dimension is a number.
// A rule that fails yields `ShapeMismatch<"message">`. Methods take their argument as
// `Tensor<…> & Check<…>`, so a bad call is a tsc error at the argument, reading
// "Property '__shapeError' is missing … required in type ShapeMismatch<"matmul: …">".
import type { LessThan, Minus } from "./arith.js";

export type Dim = number | string;
export type Shape = readonly Dim[];

/** The type a failed shape rule yields; nothing but itself is assignable to it. */
export interface ShapeMismatch<Msg extends string> {
  readonly __shapeError: Msg;
}

/** `unknown` when `R` is a shape, the mismatch (prefixed with the op) when it is one. */
export type Check<R, Op extends string> = R extends ShapeMismatch<infer M> ? ShapeMismatch<`${Op}: ${M}`> : unknown;

/** The shape in `R`, or `never` when the rule failed (the call is already an error). */
export type Ok<R> = R extends ShapeMismatch<string> ? never : R extends Shape ? R : never;

/** True for `number` / `string`: a dimension the types cannot decide. */
export type IsWide<D> = number extends D ? true : string extends D ? true : false;

/** The shape type of a result whose rank the types do not know: any of the inputs' dims. */
export type WideOf<A extends Shape, B extends Shape = []> = (A[number] | B[number])[];

/** True when the rank is known (a tuple, not `Dim[]`). */
export type IsTuple<S extends Shape> = number extends S["length"] ? false : true;

type IsOne<D> = IsWide<D> extends true ? false : [D] extends [1] ? true : false;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

export type FmtDim<D> = D extends number
  ? number extends D
    ? "number"
    : `${D}`
  : D extends string
    ? string extends D
      ? "string"
      : D
    : "?";

type JoinDims<S extends Shape, Acc extends string = ""> = S extends readonly [infer H, ...infer R extends Shape]
  ? JoinDims<R, Acc extends "" ? FmtDim<H> : `${Acc}, ${FmtDim<H>}`>
  : Acc;

/** `[batch, 16]`, as the messages print shapes. */
export type FmtShape<S extends Shape> = IsTuple<S> extends true ? `[${JoinDims<S>}]` : "[...]";

/** Unification of two dimensions that must be equal (contraction, concat, gather). */
export type UnifyDim<A, B> = (
  Same<A, B> extends true ? A : IsWide<A> extends true ? (IsWide<B> extends true ? number : B) : IsWide<B> extends true ? A : never
) &
  Dim;

/** One broadcast dimension: equal, or one of them 1; `never` when they clash. */
export type BroadcastDim<A, B> =
  Same<A, B> extends true
    ? A
    : IsOne<A> extends true
      ? B
      : IsOne<B> extends true
        ? A
        : IsWide<A> extends true
          ? IsWide<B> extends true
            ? number
            : B
          : IsWide<B> extends true
            ? A
            : never;

type BroadcastLoop<A extends Shape, B extends Shape, A0 extends Shape, B0 extends Shape, Acc extends Dim[]> = A extends readonly [
  ...infer AR extends Shape,
  infer a extends Dim,
]
  ? B extends readonly [...infer BR extends Shape, infer b extends Dim]
    ? [BroadcastDim<a, b>] extends [never]
      ? ShapeMismatch<`cannot broadcast ${FmtShape<A0>} with ${FmtShape<B0>} (${FmtDim<a>} vs ${FmtDim<b>})`>
      : BroadcastLoop<AR, BR, A0, B0, [BroadcastDim<a, b>, ...Acc]>
    : [...A, ...Acc]
  : [...B, ...Acc];

/** Numpy broadcasting, right-aligned. */
export type Broadcast<A extends Shape, B extends Shape> = IsTuple<A> extends true
  ? IsTuple<B> extends true
    ? BroadcastLoop<A, B, A, B, []>
    : WideOf<A, B>
  : WideOf<A, B>;

/** Broadcasting of three shapes (`where`). */
export type Broadcast3<A extends Shape, B extends Shape, C extends Shape> =
  Broadcast<A, B> extends infer AB ? (AB extends Shape ? Broadcast<AB, C> : AB) : never;

type BroadcastToLoop<S extends Shape, T extends Shape, S0 extends Shape, T0 extends Shape> = S extends readonly [
  ...infer SR extends Shape,
  infer s,
]
  ? T extends readonly [...infer TR extends Shape, infer t]
    ? IsOne<s> extends true
      ? BroadcastToLoop<SR, TR, S0, T0>
      : [UnifyDim<s, t>] extends [never]
        ? ShapeMismatch<`cannot broadcast ${FmtShape<S0>} to ${FmtShape<T0>} (${FmtDim<s>} vs ${FmtDim<t>})`>
        : BroadcastToLoop<SR, TR, S0, T0>
    : ShapeMismatch<`cannot broadcast ${FmtShape<S0>} to the lower rank ${FmtShape<T0>}`>
  : [...T0];

/** `T` when `S` broadcasts to exactly `T` (each dimension of `S` is 1 or equal). */
export type BroadcastTo<S extends Shape, T extends Shape> = IsTuple<S> extends true
  ? IsTuple<T> extends true
    ? BroadcastToLoop<S, T, S, T>
    : [...T]
  : [...T];

type MatMulTuples<A extends Shape, B extends Shape> = A extends readonly [...infer AB extends Shape, infer m, infer k]
  ? B extends readonly [...infer BB extends Shape, infer k2, infer n]
    ? [UnifyDim<k, k2>] extends [never]
      ? ShapeMismatch<`contracting dimensions differ: ${FmtShape<A>} @ ${FmtShape<B>} (${FmtDim<k>} vs ${FmtDim<k2>})`>
      : Broadcast<AB, BB> extends infer Batch
        ? Batch extends Shape
          ? [...Batch, m, n]
          : ShapeMismatch<`batch dimensions do not broadcast: ${FmtShape<A>} @ ${FmtShape<B>}`>
        : never
    : ShapeMismatch<`operands need rank >= 2, found ${FmtShape<B>} (use expandDims)`>
  : ShapeMismatch<`operands need rank >= 2, found ${FmtShape<A>} (use expandDims)`>;

/** `[...B, m, k] @ [...B, k, n] → [...B, m, n]`, batch dimensions broadcast. */
export type MatMul<A extends Shape, B extends Shape> = IsTuple<A> extends true
  ? IsTuple<B> extends true
    ? MatMulTuples<A, B>
    : WideOf<A, B>
  : WideOf<A, B>;

/**
 * An axis normalized against `Rank` (negative counts from the end), or `never` when out of
 * range. Wide axes or ranks give `number`.
 */
export type NormAxis<A extends number, Rank extends number> = number extends A | Rank
  ? number
  : `${A}` extends `-${infer P extends number}`
    ? LessThan<Rank, P> extends true
      ? never
      : Minus<Rank, P>
    : LessThan<A, Rank> extends true
      ? A
      : never;
