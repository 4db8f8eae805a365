// Sources: graph inputs, scalar constants and index ramps. They take no inputs.
import type { Emitter, Primitive } from "../ir/primitive.js";
import type { Node } from "../ir/node.js";
import { DTYPES, type DType, wrapInt } from "../ir/dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { checkShape, sizeOf, stridesOf } from "../ir/shapes.js";

function checkDType(op: string, d: unknown): DType {
  if (!DTYPES.includes(d as DType)) throw new DTypeError(`${op}: dtype must be one of ${DTYPES.join(", ")}, found ${String(d)}`, op);
  return d as DType;
}

/** `input {name, shape, dtype}`: a graph argument; made by `Emitter.input`, never hash-consed. */
export const input: Primitive<{ name: string; shape: number[]; dtype: DType }> = {
  name: "input",
  kind: "source",
  arity: 0,
  infer: (_, a) => {
    checkShape("input", a.shape);
    return { shape: [...a.shape], dtype: checkDType("input", a.dtype) };
  },
  evaluate: (_, node) => {
    throw new Error(`input "${String(node.attrs.name)}" (%${node.id}) has no value: the interpreter supplies inputs`);
  },
};

/** `constant {value, dtype = f32}`: a scalar (shape []); broadcast it for larger shapes. */
export const constant: Primitive<{ value: number; dtype?: DType }> = {
  name: "constant",
  kind: "source",
  arity: 0,
  infer: (_, a) => {
    if (typeof a.value !== "number") throw new DTypeError(`constant: value must be a number, found ${JSON.stringify(a.value)}`, "constant");
    return { shape: [], dtype: checkDType("constant", a.dtype ?? "f32") };
  },
  evaluate: (_, node) => Float64Array.of(wrapInt(node.dtype, node.attrs.value as number)),
  wgsl: (_, node) => wgslLiteral(node.attrs.value as number, node.dtype),
};

/** A WGSL literal of dtype `d`, spelling out the values WGSL has no literal for. */
export function wgslLiteral(v: number, d: DType): string {
  if (d === "bool") return v !== 0 ? "true" : "false";
  if (d === "i32") return (v | 0) === -2147483648 ? "i32(-2147483647 - 1)" : `i32(${v | 0})`;
  if (d === "u32") return `${v >>> 0}u`;
  if (Number.isNaN(v)) return d === "f16" ? "df_f16_bits(0x7e00u)" : "df_f32_bits(0x7fc00000u)";
  if (!Number.isFinite(v)) {
    if (d === "f16") return v > 0 ? "df_f16_bits(0x7c00u)" : "df_f16_bits(0xfc00u)";
    return v > 0 ? "df_f32_bits(0x7f800000u)" : "df_f32_bits(0xff800000u)";
  }
  const s = Object.is(v, -0) ? "-0.0" : Number.isInteger(v) && Math.abs(v) < 1e21 ? `${v}.0` : String(v);
  return `${d}(${s})`;
}

/**
 * Infinities and NaN have no WGSL literal, and a constant expression may not produce them
 * (`bitcast<f32>(0x7f800000u)` is rejected at shader creation). A call to a user function is
 * not a constant expression, so these helpers build them at run time; a module adds each one
 * whose name its text uses.
 */
export const WGSL_SPECIAL_VALUES: Readonly<Record<string, string>> = {
  df_f32_bits: "fn df_f32_bits(bits: u32) -> f32 { return bitcast<f32>(bits); }",
  df_f16_bits: "fn df_f16_bits(bits: u32) -> f16 { return bitcast<vec2<f16>>(bits).x; }",
};

/** `iota {shape, axis, dtype = i32}`: each element is its index along `axis`. */
export const iota: Primitive<{ shape: number[]; axis: number; dtype?: DType }> = {
  name: "iota",
  kind: "source",
  arity: 0,
  infer: (_, a) => {
    checkShape("iota", a.shape);
    if (!Number.isInteger(a.axis) || a.axis < 0 || a.axis >= a.shape.length) {
      throw new ShapeError(`iota: axis ${a.axis} is out of range for shape [${a.shape.join(",")}]`, "iota");
    }
    return { shape: [...a.shape], dtype: checkDType("iota", a.dtype ?? "i32") };
  },
  evaluate: (_, node) => {
    const { shape, axis } = node.attrs as { shape: number[]; axis: number };
    const n = sizeOf(shape);
    const stride = stridesOf(shape)[axis]!;
    const dim = shape[axis]!;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = wrapInt(node.dtype, Math.floor(i / stride) % dim);
    return out;
  },
};

/** `value` of dtype `like.dtype` in the shape `like.shape`: a constant, broadcast if not scalar. */
export function full(b: Emitter, value: number, like: { readonly shape: readonly number[]; readonly dtype: DType }): Node {
  const c = b.emit("constant", [], { value, dtype: like.dtype });
  return like.shape.length === 0 ? c : b.emit("broadcast", [c], { shape: [...like.shape] });
}
