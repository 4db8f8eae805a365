// Binary arithmetic: add sub mul div pow max min. Inputs have identical shape and dtype (the
// frontend inserts `broadcast`), so each VJP rule is a line or two with no un-broadcasting.
import type { Emitter, Primitive, TypeInfo } from "../ir/primitive.js";
import type { Node } from "../ir/node.js";
import { type DType, isFloat } from "../ir/dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { fmtShape, sameShape } from "../ir/shapes.js";
import { full } from "./source.js";

/** Identical shapes and dtypes across `inputs` (elementwise ops); names them all on failure. */
export function checkSame(op: string, inputs: readonly TypeInfo[], names = ["a", "b", "c"]): void {
  const t = inputs[0]!;
  inputs.forEach((u, i) => {
    if (!sameShape(u.shape, t.shape)) {
      const all = inputs.map((v, j) => `${names[j] ?? `x${j}`} is ${fmtShape(v.shape)}`).join(", ");
      throw new ShapeError(`${op}: inputs must have identical shapes (insert broadcast first): ${all}`, op);
    }
    if (u.dtype !== t.dtype) {
      const all = inputs.map((v, j) => `${names[j] ?? `x${j}`} is ${v.dtype}`).join(", ");
      throw new DTypeError(`${op}: inputs must have the same dtype (insert cast first): ${all}`, op);
    }
  });
}

/** float: f32 f16 · signed: f32 f16 i32 · numeric: all but bool · bool · any. */
export type DTypeClass = "float" | "signed" | "numeric" | "bool" | "any";
const accepts = (c: DTypeClass, d: DType): boolean =>
  c === "any" ||
  (c === "float" ? isFloat(d) : c === "signed" ? isFloat(d) || d === "i32" : c === "bool" ? d === "bool" : d !== "bool");

export function checkClass(op: string, c: DTypeClass, d: DType): void {
  if (!accepts(c, d)) {
    const want = { numeric: "a numeric dtype (f32, f16, i32, u32)", signed: "a signed dtype (f32, f16, i32)", float: "a float dtype (f32, f16)", bool: "bool", any: "" }[c];
    throw new DTypeError(`${op}: expects ${want}, found ${d}`, op);
  }
}

/** Applies `f` elementwise (integer variants wrap their own results). */
function map2(a: Float64Array, b: Float64Array, f: (x: number, y: number) => number): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i]!, b[i]!);
  return out;
}

const em = (b: Emitter, op: string, ...xs: Node[]): Node => b.emit(op, xs);

interface BinarySpec {
  name: string;
  cls: DTypeClass;
  float: (x: number, y: number) => number;
  i32?: (x: number, y: number) => number;
  u32?: (x: number, y: number) => number;
  wgsl: (a: string, b: string) => string;
  vjp: (ct: Node, node: Node, b: Emitter) => (Node | null)[];
}

function binary(s: BinarySpec): Primitive {
  return {
    name: s.name,
    kind: "elementwise",
    arity: 2,
    infer: (xs) => {
      checkSame(s.name, xs);
      checkClass(s.name, s.cls, xs[0]!.dtype);
      return { shape: [...xs[0]!.shape], dtype: xs[0]!.dtype };
    },
    evaluate: ([a, b], node) => {
      const f = node.dtype === "i32" ? s.i32! : node.dtype === "u32" ? s.u32! : s.float;
      return map2(a!, b!, f);
    },
    vjp: s.vjp,
    wgsl: ([a, b]) => s.wgsl(a!, b!),
  };
}

// WGSL integer division: x / 0 is x, and i32 MIN / -1 is MIN; otherwise truncate.
const divI32 = (x: number, y: number): number => (y === 0 || (x === -2147483648 && y === -1) ? x : Math.trunc(x / y) | 0);
const divU32 = (x: number, y: number): number => (y === 0 ? x : Math.floor(x / y) >>> 0);

/** Gradient routing for max/min: all of `ct` to the winner, half each on ties (as JAX). */
function selectVjp(ct: Node, node: Node, b: Emitter, win: "gt" | "lt"): Node[] {
  const [x, y] = node.inputs as [Node, Node];
  const zero = full(b, 0, ct);
  const half = em(b, "mul", ct, full(b, 0.5, ct));
  const tie = em(b, "eq", x, y);
  const gx = em(b, "where", em(b, win, x, y), ct, em(b, "where", tie, half, zero));
  const gy = em(b, "where", em(b, win, y, x), ct, em(b, "where", tie, half, zero));
  return [gx, gy];
}

export const add = binary({
  name: "add",
  cls: "numeric",
  float: (x, y) => x + y,
  i32: (x, y) => (x + y) | 0,
  u32: (x, y) => (x + y) >>> 0,
  wgsl: (a, b) => `(${a} + ${b})`,
  vjp: (ct) => [ct, ct],
});

export const sub = binary({
  name: "sub",
  cls: "numeric",
  float: (x, y) => x - y,
  i32: (x, y) => (x - y) | 0,
  u32: (x, y) => (x - y) >>> 0,
  wgsl: (a, b) => `(${a} - ${b})`,
  vjp: (ct, _, b) => [ct, em(b, "neg", ct)],
});

export const mul = binary({
  name: "mul",
  cls: "numeric",
  float: (x, y) => x * y,
  i32: (x, y) => Math.imul(x, y),
  u32: (x, y) => Math.imul(x, y) >>> 0,
  wgsl: (a, b) => `(${a} * ${b})`,
  vjp: (ct, node, b) => [em(b, "mul", ct, node.inputs[1]!), em(b, "mul", ct, node.inputs[0]!)],
});

export const div = binary({
  name: "div",
  cls: "numeric",
  float: (x, y) => x / y,
  i32: divI32,
  u32: divU32,
  wgsl: (a, b) => `(${a} / ${b})`,
  // d(x/y)/dy = -x/y² = -(x/y)/y
  vjp: (ct, node, b) => [em(b, "div", ct, node.inputs[1]!), em(b, "neg", em(b, "div", em(b, "mul", ct, node), node.inputs[1]!))],
});

export const pow = binary({
  name: "pow",
  cls: "float",
  float: Math.pow,
  wgsl: (a, b) => `pow(${a}, ${b})`,
  vjp: (ct, node, b) => {
    const [x, y] = node.inputs as [Node, Node];
    const gx = em(b, "mul", ct, em(b, "mul", y, em(b, "pow", x, em(b, "sub", y, full(b, 1, y)))));
    // d/dy = x^y · log x; at x = 0 take 0 (the limit from x > 0 where it exists) instead of 0·(−∞)
    const zero = full(b, 0, x);
    const dy = em(b, "where", em(b, "eq", x, zero), zero, em(b, "mul", node, em(b, "log", x)));
    return [gx, em(b, "mul", ct, dy)];
  },
});

export const max = binary({
  name: "max",
  cls: "numeric",
  float: Math.max,
  i32: Math.max,
  u32: Math.max,
  wgsl: (a, b) => `max(${a}, ${b})`,
  vjp: (ct, node, b) => selectVjp(ct, node, b, "gt"),
});

export const min = binary({
  name: "min",
  cls: "numeric",
  float: Math.min,
  i32: Math.min,
  u32: Math.min,
  wgsl: (a, b) => `min(${a}, ${b})`,
  vjp: (ct, node, b) => selectVjp(ct, node, b, "lt"),
});
