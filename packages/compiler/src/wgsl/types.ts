// How each dorafuse dtype looks in WGSL: the type a storage buffer holds, the type a value
// has inside a kernel (bool is a real WGSL bool in expressions but a u32 0/1 in memory, since
// WGSL cannot store bool), and the conversions between the two.
import type { DType } from "@dorafuse/core";
import { CompileError } from "../errors.js";

/** Element type of a storage array holding `d`. */
export function storageType(d: DType): string {
  return d === "bool" ? "u32" : d;
}

/** Type of a value of `d` inside a kernel. */
export function valueType(d: DType): string {
  return d;
}

/** Converts a loaded storage element to a value (`e` is an expression of storageType(d)). */
export function fromStorage(d: DType, e: string): string {
  return d === "bool" ? `(${e} != 0u)` : e;
}

/** Converts a value to what is stored. */
export function toStorage(d: DType, e: string): string {
  return d === "bool" ? `select(0u, 1u, ${e})` : e;
}

/**
 * A value of `d` read from a u32 word of a packed binding (several tensors sharing one
 * binding, see plan/bindings.ts). Only 4-byte dtypes are packed.
 */
export function fromWord(d: DType, e: string): string {
  switch (d) {
    case "f32":
      return `bitcast<f32>(${e})`;
    case "i32":
      return `bitcast<i32>(${e})`;
    case "u32":
      return e;
    case "bool":
      return `(${e} != 0u)`;
    case "f16":
      throw new CompileError("f16 tensors are never packed into a shared u32 binding", "plan/bindings");
  }
}

export function toWord(d: DType, e: string): string {
  switch (d) {
    case "f32":
    case "i32":
      return `bitcast<u32>(${e})`;
    case "u32":
      return e;
    case "bool":
      return `select(0u, 1u, ${e})`;
    case "f16":
      throw new CompileError("f16 tensors are never packed into a shared u32 binding", "plan/bindings");
  }
}

/** Accumulator type for sums and maxima of `d`: f16 accumulates in f32, bool in u32. */
export function accumulatorType(d: DType): "f32" | "i32" | "u32" {
  if (d === "f32" || d === "f16") return "f32";
  if (d === "i32") return "i32";
  return "u32";
}

/** The identity of `op` over accumulator type `t`, as WGSL. */
export function reduceIdentity(op: "sum" | "max", t: "f32" | "i32" | "u32"): string {
  if (op === "sum") return t === "f32" ? "0.0" : t === "i32" ? "0i" : "0u";
  if (t === "f32") return "df_f32_bits(0xff800000u)"; // -inf
  return t === "i32" ? "i32(-2147483647 - 1)" : "0u";
}

/** `acc` combined with `x` (both of the accumulator type). */
export function reduceCombine(op: "sum" | "max", acc: string, x: string): string {
  return op === "sum" ? `${acc} + ${x}` : `max(${acc}, ${x})`;
}

/** An expression of dtype `d` converted to accumulator type `t`. */
export function toAccumulator(d: DType, t: string, e: string): string {
  if (d === "bool") return `select(0u, 1u, ${e})`;
  return d === t ? e : `${t}(${e})`;
}

/** An accumulator converted back to dtype `d`. */
export function fromAccumulator(d: DType, t: string, e: string): string {
  if (d === "bool") return `(${e} != 0u)`;
  return d === t ? e : `${d}(${e})`;
}

export { wgslLiteral as literal, WGSL_SPECIAL_VALUES as SPECIAL_VALUE_FUNCTIONS } from "@dorafuse/core";
