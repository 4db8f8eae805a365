// The two non-traced kinds of leaves: a TensorSpec (what `trace` is told an argument looks
// like) and a HostTensor (concrete float64 data the interpreter takes and gives back). Both
// carry the same type-level shape and dtype as the Tensor they stand for.
import type { DType } from "../ir/dtype.js";
import { fmtShape, sizeOf } from "../ir/shapes.js";
import { ShapeError } from "../errors.js";
import { Tensor } from "../tensor/tensor.js";
import type { Dim, Shape } from "../tensor/shape-types.js";

/** The description of one traced argument: its shape (names allowed) and dtype. */
export class TensorSpec<S extends Shape = Shape, D extends DType = DType> {
  declare readonly __type: { readonly shape: S; readonly dtype: D };
  constructor(
    readonly shape: S,
    readonly dtype: D,
  ) {}
  toString(): string {
    return `${this.dtype}[${this.shape.join(",")}]`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `TensorSpec(${this.toString()})`;
  }
}

/** `spec(["batch", 16], "f32")`: a traced argument of that shape and dtype. */
export function spec<const S extends readonly Dim[], D extends DType = "f32">(shape: S, dtype?: D): TensorSpec<[...S], D> {
  return new TensorSpec([...shape] as [...S], (dtype ?? "f32") as D);
}

/** Concrete values: row-major float64 data for every dtype (bool as 0/1), with shape and dtype. */
export class HostTensor<S extends Shape = Shape, D extends DType = DType> {
  declare readonly __type: { readonly shape: S; readonly dtype: D };
  constructor(
    readonly shape: readonly number[],
    readonly data: Float64Array,
    readonly dtype: D,
  ) {
    if (data.length !== sizeOf(shape)) {
      throw new ShapeError(`hostTensor: shape ${fmtShape(shape)} holds ${sizeOf(shape)} values, found ${data.length}`, "hostTensor");
    }
  }
  /** The data as a plain array (for printing and comparisons). */
  toArray(): number[] {
    return Array.from(this.data);
  }
  /** The value of a scalar (or one-element) tensor. */
  item(): number {
    if (this.data.length !== 1) throw new ShapeError(`item: needs one element, found ${fmtShape(this.shape)}`, "item");
    return this.data[0]!;
  }
  toString(): string {
    return `HostTensor(${this.dtype}${fmtShape(this.shape)})`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    const head = Array.from(this.data.subarray(0, 8), (v) => +v.toPrecision(6)).join(", ");
    return `HostTensor(${this.dtype}${fmtShape(this.shape)} [${head}${this.data.length > 8 ? ", …" : ""}])`;
  }
}

/** Concrete data of a shape: `hostTensor([2, 3], [1, 2, 3, 4, 5, 6])` (f32 unless told). */
export function hostTensor<const S extends readonly number[], D extends DType = "f32">(
  shape: S,
  data: ArrayLike<number>,
  dtype?: D,
): HostTensor<[...S], D> {
  return new HostTensor<[...S], D>([...shape], Float64Array.from(data), (dtype ?? "f32") as D);
}

export const isTensor = (v: unknown): v is Tensor => v instanceof Tensor;
export const isSpec = (v: unknown): v is TensorSpec => v instanceof TensorSpec;
export const isHost = (v: unknown): v is HostTensor => v instanceof HostTensor;

// ---- trees of one kind mapped to another, at the type level ------------------------------

/** The tracer tree a function receives for a tree of specs or host tensors. */
export type TracersOf<T> = T extends HostTensor | TensorSpec
  ? Tensor<T["__type"]["shape"], T["__type"]["dtype"]>
  : T extends readonly unknown[]
    ? { -readonly [K in keyof T]: TracersOf<T[K]> }
    : T extends object
      ? { -readonly [K in keyof T]: TracersOf<T[K]> }
      : T;

/** The host tree `run`/`evaluate` return for a tree of tensors. */
export type HostOf<T> = T extends Tensor
  ? HostTensor<T["__type"]["shape"], T["__type"]["dtype"]>
  : T extends readonly unknown[]
    ? { -readonly [K in keyof T]: HostOf<T[K]> }
    : T extends object
      ? { -readonly [K in keyof T]: HostOf<T[K]> }
      : T;

/**
 * The host data `run` accepts for a tree of tensors: host tensors of the same dtypes. Their
 * shape types are not held to the specs' (named dimensions take any size, and data built at
 * run time is often only `number[]`-shaped): `run` checks every shape, naming the input.
 */
export type HostInputsOf<T> = T extends Tensor
  ? HostTensor<T["__type"]["shape"], T["__type"]["dtype"]> | HostTensor<Shape, T["__type"]["dtype"]>
  : T extends readonly unknown[]
    ? { readonly [K in keyof T]: HostInputsOf<T[K]> }
    : T extends object
      ? { readonly [K in keyof T]: HostInputsOf<T[K]> }
      : T;

/** The spec tree describing a tree of host tensors or tensors. */
export type SpecsOf<T> = T extends HostTensor | Tensor
  ? TensorSpec<T["__type"]["shape"], T["__type"]["dtype"]>
  : T extends readonly unknown[]
    ? { -readonly [K in keyof T]: SpecsOf<T[K]> }
    : T extends object
      ? { -readonly [K in keyof T]: SpecsOf<T[K]> }
      : T;
