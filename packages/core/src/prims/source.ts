// Sources: graph inputs, scalar constants and index ramps. They take no inputs.
import type { Primitive } from "../ir/primitive.js";
import type { GraphBuilder } from "../ir/builder.js";
import type { Node } from "../ir/node.js";
import { DTYPES, type DType, wrapInt } from "../ir/dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { checkShape, sizeOf, stridesOf } from "../ir/shapes.js";

function checkDType(op: string, d: unknown): DType {
  if (!DTYPES.includes(d as DType)) throw new DTypeError(`${op}: dtype must be one of ${DTYPES.join(", ")}, found ${String(d)}`, op);
  return d as DType;
}

/** `input {name, shape, dtype}`: a graph argument; made by `GraphBuilder.input`, never hash-consed. */
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
  if (d === "i32") return `i32(${v | 0})`;
  if (d === "u32") return `${v >>> 0}u`;
  if (Number.isNaN(v)) return d === "f16" ? "bitcast<vec2<f16>>(0x7e007e00u).x" : "bitcast<f32>(0x7fc00000u)";
  if (!Number.isFinite(v)) {
    if (d === "f16") return v > 0 ? "bitcast<vec2<f16>>(0x7c007c00u).x" : "bitcast<vec2<f16>>(0xfc00fc00u).x";
    return v > 0 ? "bitcast<f32>(0x7f800000u)" : "bitcast<f32>(0xff800000u)";
  }
  const s = Object.is(v, -0) ? "-0.0" : Number.isInteger(v) && Math.abs(v) < 1e21 ? `${v}.0` : String(v);
  return `${d}(${s})`;
}

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
export function full(b: GraphBuilder, value: number, like: { readonly shape: readonly number[]; readonly dtype: DType }): Node {
  const c = b.emit("constant", [], { value, dtype: like.dtype });
  return like.shape.length === 0 ? c : b.emit("broadcast", [c], { shape: [...like.shape] });
}
