// Shapes as types for the rules that move dimensions around: reductions, reshape,
// transpose, concat, slice, expandDims/squeeze, gather. The same rules run at trace time
// (tensor/shape-rules.ts); here they run in the editor when the dimensions are literals.
import type { IsLiteral, LessThan, Minus, Plus, Product } from "./arith.js";
import type { Dim, FmtDim, FmtShape, IsTuple, IsWide, NormAxis, Shape, ShapeMismatch, UnifyDim, WideOf } from "./shape-types.js";

/** An axis argument: one axis, several, or all (undefined). Negative counts from the end. */
export type Axes = number | readonly number[] | undefined;

type AxisList<A extends Axes> = A extends number ? [A] : A extends readonly number[] ? A : [];

/** The union of normalized axes, or a mismatch naming the first bad one. */
type NormAxes<A extends readonly number[], S extends Shape, Acc = never> = A extends readonly [
  infer H extends number,
  ...infer R extends readonly number[],
]
  ? [NormAxis<H, S["length"]>] extends [never]
    ? ShapeMismatch<`axis ${H} is out of range for ${FmtShape<S>}`>
    : NormAxes<R, S, Acc | NormAxis<H, S["length"]>>
  : Acc;

type DropAxes<S extends Shape, Ax, Keep extends boolean, I extends 0[] = [], Acc extends Dim[] = []> = S extends readonly [
  infer H extends Dim,
  ...infer R extends Shape,
]
  ? DropAxes<R, Ax, Keep, [...I, 0], I["length"] extends Ax ? (Keep extends true ? [...Acc, 1] : Acc) : [...Acc, H]>
  : Acc;

type Ones<S extends Shape, Acc extends 1[] = []> = Acc["length"] extends S["length"] ? Acc : Ones<S, [...Acc, 1]>;

/** Result of reducing `S` over `A` (all axes when undefined). */
export type Reduce<S extends Shape, A extends Axes, Keep extends boolean = false> = IsTuple<S> extends false
  ? WideOf<S>
  : A extends undefined
    ? Keep extends true
      ? Ones<S>
      : []
    : NormAxes<AxisList<A>, S> extends infer N
      ? [N] extends [ShapeMismatch<string>]
        ? N
        : number extends N
          ? WideOf<S>
          : DropAxes<S, N, Keep>
      : never;

// ---- reshape ----------------------------------------------------------------------------

/** [literal dims, named dims, has a wide dim] of a shape, for comparing element counts. */
type Split<S extends Shape, L extends number[] = [], N extends string[] = [], W extends boolean = false> = S extends readonly [
  infer H,
  ...infer R extends Shape,
]
  ? IsWide<H> extends true
    ? Split<R, L, N, true>
    : H extends number
      ? Split<R, [...L, H], N, W>
      : H extends string
        ? Split<R, L, [...N, H], W>
        : Split<R, L, N, true>
  : [L, N, W];

type RemoveOne<L extends string[], X extends string, Acc extends string[] = []> = L extends [infer H extends string, ...infer R extends string[]]
  ? H extends X
    ? [...Acc, ...R]
    : RemoveOne<R, X, [...Acc, H]>
  : never;

type SameNames<A extends string[], B extends string[]> = A extends [infer H extends string, ...infer R extends string[]]
  ? [RemoveOne<B, H>] extends [never]
    ? false
    : SameNames<R, RemoveOne<B, H>>
  : B extends []
    ? true
    : false;

type HasHole<T extends Shape> = T extends readonly [infer H, ...infer R extends Shape] ? ([H] extends [-1] ? true : HasHole<R>) : false;
type FillHole<T extends Shape> = { [K in keyof T]: [T[K]] extends [-1] ? number : T[K] };

type CountsMatch<S extends Shape, T extends Shape> = Split<S> extends [infer LS extends number[], infer NS extends string[], infer WS]
  ? Split<T> extends [infer LT extends number[], infer NT extends string[], infer WT]
    ? WS extends true
      ? true
      : WT extends true
        ? true
        : Product<LS> extends Product<LT>
          ? SameNames<NS, NT>
          : false
    : never
  : never;

/**
 * `T` when `S` and `T` have the same element count. Named dimensions count as factors that
 * must appear in both; a -1 in `T` is inferred at trace time (its type is `number`).
 */
export type Reshape<S extends Shape, T extends Shape> = IsTuple<S> extends false
  ? FillHole<[...T]>
  : HasHole<T> extends true
    ? FillHole<[...T]>
    : CountsMatch<S, T> extends true
      ? [...T]
      : ShapeMismatch<`cannot reshape ${FmtShape<S>} to ${FmtShape<T>}: element counts differ`>;

// ---- transpose --------------------------------------------------------------------------

type Reverse<S extends Shape, Acc extends Dim[] = []> = S extends readonly [infer H extends Dim, ...infer R extends Shape]
  ? Reverse<R, [H, ...Acc]>
  : Acc;

type Permute<S extends Shape, P extends readonly number[], Seen = never, Acc extends Dim[] = []> = P extends readonly [
  infer H extends number,
  ...infer R extends readonly number[],
]
  ? NormAxis<H, S["length"]> extends infer A extends number
    ? [A] extends [never]
      ? ShapeMismatch<`axis ${H} is out of range for ${FmtShape<S>}`>
      : number extends A
        ? WideOf<S>
        : A extends Seen
          ? ShapeMismatch<`axis ${H} appears twice in the permutation`>
          : Permute<S, R, Seen | A, [...Acc, S[A]]>
    : never
  : Acc;

/** Axes reordered by `P` (`out[i] = S[P[i]]`); all reversed when `P` is undefined. */
export type Transpose<S extends Shape, P extends readonly number[] | undefined> = IsTuple<S> extends false
  ? WideOf<S>
  : P extends readonly number[]
    ? P["length"] extends S["length"]
      ? Permute<S, P>
      : ShapeMismatch<`permutation of ${P["length"]} axes for ${FmtShape<S>}`>
    : Reverse<S>;

/** The last two axes swapped (matrix transpose of a batch). */
export type SwapLast<S extends Shape> = IsTuple<S> extends false
  ? WideOf<S>
  : S extends readonly [...infer B extends Shape, infer m, infer n]
    ? [...B, n, m]
    : ShapeMismatch<`needs rank >= 2, found ${FmtShape<S>}`>;

// ---- concat -----------------------------------------------------------------------------

type AddDims<A, B> = A extends number ? (B extends number ? Plus<A, B> : number) : number;

type ConcatPair<A extends Shape, B extends Shape, Ax extends number, I extends 0[] = [], Acc extends Dim[] = []> = A extends readonly [
  infer a,
  ...infer AR extends Shape,
]
  ? B extends readonly [infer b, ...infer BR extends Shape]
    ? I["length"] extends Ax
      ? ConcatPair<AR, BR, Ax, [...I, 0], [...Acc, AddDims<a, b>]>
      : [UnifyDim<a, b>] extends [never]
        ? ShapeMismatch<`dimension ${I["length"]} differs (${FmtDim<a>} vs ${FmtDim<b>})`>
        : ConcatPair<AR, BR, Ax, [...I, 0], [...Acc, UnifyDim<a, b>]>
    : ShapeMismatch<"ranks differ">
  : B extends readonly []
    ? Acc
    : ShapeMismatch<"ranks differ">;

type ConcatAll<L extends readonly Shape[], Ax extends number, Acc extends Shape> = L extends readonly [
  infer H extends Shape,
  ...infer R extends readonly Shape[],
]
  ? ConcatPair<Acc, H, Ax> extends infer P
    ? P extends Shape
      ? ConcatAll<R, Ax, P>
      : P
    : never
  : Acc;

/** Shapes joined along `Ax`: other dimensions equal, the axis dimensions added. */
export type Concat<L extends readonly Shape[], Ax extends number> = L extends readonly [
  infer H extends Shape,
  ...infer R extends readonly Shape[],
]
  ? IsTuple<H> extends false
    ? WideOf<H>
    : NormAxis<Ax, H["length"]> extends infer A extends number
      ? [A] extends [never]
        ? ShapeMismatch<`axis ${Ax} is out of range for ${FmtShape<H>}`>
        : number extends A
          ? WideOf<H>
          : ConcatAll<R, A, H>
      : never
  : WideOf<L[number]>;

// ---- slice ------------------------------------------------------------------------------

/** Per axis: `null` keeps it, `[start]` runs to the end, `[start, end]`; negatives count from the end. */
export type SliceRange = null | readonly [number] | readonly [number, number];

/** A bound normalized against the dimension: non-negative literal, or `number`. */
type Bound<X extends number, D> = `${X}` extends `-${infer P extends number}`
  ? D extends number
    ? IsLiteral<D> extends true
      ? Minus<D, P>
      : number
    : number
  : X;

type SliceDim<D, R extends SliceRange> = R extends null
  ? D
  : R extends readonly [infer s extends number]
    ? SliceDim<D, [s, D extends number ? D : number]>
    : R extends readonly [infer s0 extends number, infer e0 extends number]
      ? [Bound<s0, D>, Bound<e0, D>] extends [infer s extends number, infer e extends number]
        ? [s] extends [never]
          ? never
          : [e] extends [never]
            ? never
            : D extends number
              ? LessThan<D, e> extends true
                ? never
                : LessThan<e, s> extends true
                  ? never
                  : Minus<e, s>
              : Minus<e, s>
        : never
      : never;

type SliceLoop<S extends Shape, R extends readonly SliceRange[], S0 extends Shape, Acc extends Dim[] = []> = R extends readonly [
  infer r extends SliceRange,
  ...infer RR extends readonly SliceRange[],
]
  ? S extends readonly [infer d, ...infer SR extends Shape]
    ? [SliceDim<d, r>] extends [never]
      ? ShapeMismatch<`range ${FmtRange<r>} does not fit dimension ${Acc["length"]} (${FmtDim<d>}) of ${FmtShape<S0>}`>
      : SliceLoop<SR, RR, S0, [...Acc, SliceDim<d, r> & Dim]>
    : ShapeMismatch<`more ranges than the ${S0["length"]} axes of ${FmtShape<S0>}`>
  : [...Acc, ...S];

type FmtRange<R> = R extends readonly [infer s extends number, infer e extends number]
  ? `[${s}, ${e}]`
  : R extends readonly [infer s extends number]
    ? `[${s}]`
    : "null";

/** Result of slicing `S` by per-axis ranges (missing trailing axes are kept whole). */
export type Slice<S extends Shape, R extends readonly SliceRange[]> = IsTuple<S> extends false ? WideOf<S> : SliceLoop<S, R, S>;

// ---- expandDims / squeeze / gather ------------------------------------------------------

type Insert<S extends Shape, At extends number, X, I extends 0[] = [], Acc extends Dim[] = []> = I["length"] extends At
  ? [...Acc, X & Dim, ...S]
  : S extends readonly [infer H extends Dim, ...infer R extends Shape]
    ? Insert<R, At, X, [...I, 0], [...Acc, H]>
    : [...Acc, X & Dim];

/** A new axis of size 1 at `Ax` (counted in the result's rank). */
export type ExpandDims<S extends Shape, Ax extends number> = IsTuple<S> extends false
  ? WideOf<S>
  : NormAxis<Ax, Plus<S["length"], 1>> extends infer A extends number
    ? [A] extends [never]
      ? ShapeMismatch<`axis ${Ax} is out of range for expanding ${FmtShape<S>}`>
      : number extends A
        ? WideOf<S>
        : Insert<S, A, 1>
    : never;

type SqueezeLoop<S extends Shape, Ax, S0 extends Shape, I extends 0[] = [], Acc extends Dim[] = []> = S extends readonly [
  infer H extends Dim,
  ...infer R extends Shape,
]
  ? I["length"] extends Ax
    ? [H] extends [1]
      ? SqueezeLoop<R, Ax, S0, [...I, 0], Acc>
      : number extends H
        ? SqueezeLoop<R, Ax, S0, [...I, 0], Acc>
        : ShapeMismatch<`axis ${I["length"]} of ${FmtShape<S0>} has size ${FmtDim<H>}, not 1`>
    : SqueezeLoop<R, Ax, S0, [...I, 0], [...Acc, H]>
  : Acc;

/** `S` without the axes `A`, each of which must have size 1. */
export type Squeeze<S extends Shape, A extends number | readonly number[]> = IsTuple<S> extends false
  ? WideOf<S>
  : NormAxes<AxisList<A>, S> extends infer N
    ? [N] extends [ShapeMismatch<string>]
      ? N
      : number extends N
        ? WideOf<S>
        : SqueezeLoop<S, N, S>
    : never;

type SplitAt<S extends Shape, At extends number, Acc extends Dim[] = []> = Acc["length"] extends At
  ? [Acc, S]
  : S extends readonly [infer H extends Dim, ...infer R extends Shape]
    ? SplitAt<R, At, [...Acc, H]>
    : [Acc, []];

/** `S[:axis] ++ I ++ S[axis+1:]`: rows of `S` picked along `Ax` by an index tensor of shape `I`. */
export type Gather<S extends Shape, I extends Shape, Ax extends number> = IsTuple<S> extends false
  ? WideOf<S>
  : NormAxis<Ax, S["length"]> extends infer A extends number
    ? [A] extends [never]
      ? ShapeMismatch<`axis ${Ax} is out of range for ${FmtShape<S>}`>
      : number extends A
        ? WideOf<S>
        : SplitAt<S, A> extends [infer Pre extends Dim[], readonly [Dim, ...infer Post extends Dim[]]]
          ? [...Pre, ...I, ...Post]
          : never
    : never;
