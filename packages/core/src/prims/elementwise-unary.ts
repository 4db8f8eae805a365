// Unary elementwise math: neg exp log sin cos tanh sqrt rsqrt abs sign recip floor ceil erf.
import type { Emitter, Primitive } from "../ir/primitive.js";
import type { Node } from "../ir/node.js";
import { checkClass, type DTypeClass } from "./elementwise-binary.js";
import { full } from "./source.js";

const em = (b: Emitter, op: string, ...xs: Node[]): Node => b.emit(op, xs);

/**
 * erf in float64 to a few ulps: erf(x) = 2/√π · e^{−x²} · Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1)).
 * Every term is positive, so nothing cancels; beyond |x| = 6, erf is ±1 in float64.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  const x2 = a * a;
  let term = a;
  let sum = a;
  for (let n = 1; term > sum * 1e-17; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  const r = (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  return x < 0 ? -r : r;
}

// Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7, below f32's resolution near 1).
const ERF_WGSL = `fn df_erf(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let p = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  return sign(x) * (1.0 - p * exp(-x * x));
}`;

interface UnarySpec {
  name: string;
  cls: DTypeClass;
  float: (x: number) => number;
  int?: (x: number) => number; // for i32; must wrap itself
  wgsl: (a: string, node: Node) => string;
  wgslFunctions?: string;
  /** Absent: zero gradient almost everywhere (floor, ceil, sign). */
  vjp?: (ct: Node, node: Node, b: Emitter) => Node;
}

function unary(s: UnarySpec): Primitive {
  return {
    name: s.name,
    kind: "elementwise",
    arity: 1,
    infer: ([x]) => {
      checkClass(s.name, s.cls, x!.dtype);
      return { shape: [...x!.shape], dtype: x!.dtype };
    },
    evaluate: ([x], node) => {
      const f = node.dtype === "i32" && s.int ? s.int : s.float;
      const out = new Float64Array(x!.length);
      for (let i = 0; i < out.length; i++) out[i] = f(x![i]!);
      return out;
    },
    vjp: (ct, node, b) => [s.vjp ? s.vjp(ct, node, b) : null],
    wgsl: ([a], node) => s.wgsl(a!, node),
    ...(s.wgslFunctions ? { wgslFunctions: s.wgslFunctions } : {}),
  };
}

const x0 = (n: Node): Node => n.inputs[0]!;

export const neg = unary({
  name: "neg",
  cls: "signed",
  float: (x) => -x,
  int: (x) => -x | 0,
  wgsl: (a) => `(-${a})`,
  vjp: (ct, _, b) => em(b, "neg", ct),
});
export const exp = unary({
  name: "exp",
  cls: "float",
  float: Math.exp,
  wgsl: (a) => `exp(${a})`,
  vjp: (ct, node, b) => em(b, "mul", ct, node),
});
export const log = unary({
  name: "log",
  cls: "float",
  float: Math.log,
  wgsl: (a) => `log(${a})`,
  vjp: (ct, node, b) => em(b, "div", ct, x0(node)),
});
export const sin = unary({
  name: "sin",
  cls: "float",
  float: Math.sin,
  wgsl: (a) => `sin(${a})`,
  vjp: (ct, node, b) => em(b, "mul", ct, em(b, "cos", x0(node))),
});
export const cos = unary({
  name: "cos",
  cls: "float",
  float: Math.cos,
  wgsl: (a) => `cos(${a})`,
  vjp: (ct, node, b) => em(b, "neg", em(b, "mul", ct, em(b, "sin", x0(node)))),
});
export const tanh = unary({
  name: "tanh",
  cls: "float",
  float: Math.tanh,
  wgsl: (a) => `tanh(${a})`,
  vjp: (ct, node, b) => em(b, "mul", ct, em(b, "sub", full(b, 1, node), em(b, "mul", node, node))),
});
export const sqrt = unary({
  name: "sqrt",
  cls: "float",
  float: Math.sqrt,
  wgsl: (a) => `sqrt(${a})`,
  vjp: (ct, node, b) => em(b, "div", ct, em(b, "mul", full(b, 2, node), node)),
});
export const rsqrt = unary({
  name: "rsqrt",
  cls: "float",
  float: (x) => 1 / Math.sqrt(x),
  wgsl: (a) => `inverseSqrt(${a})`,
  // d(x^-1/2)/dx = -½ x^-3/2 = -½ y³
  vjp: (ct, node, b) => em(b, "mul", ct, em(b, "mul", full(b, -0.5, node), em(b, "mul", node, em(b, "mul", node, node)))),
});
export const abs = unary({
  name: "abs",
  cls: "signed",
  float: Math.abs,
  int: (x) => Math.abs(x) | 0,
  wgsl: (a) => `abs(${a})`,
  vjp: (ct, node, b) => em(b, "mul", ct, em(b, "sign", x0(node))),
});
export const sign = unary({
  name: "sign",
  cls: "signed",
  float: (x) => (Number.isNaN(x) ? NaN : x > 0 ? 1 : x < 0 ? -1 : 0),
  int: Math.sign,
  wgsl: (a) => `sign(${a})`,
});
export const recip = unary({
  name: "recip",
  cls: "float",
  float: (x) => 1 / x,
  wgsl: (a) => `(1.0 / ${a})`,
  vjp: (ct, node, b) => em(b, "neg", em(b, "mul", ct, em(b, "mul", node, node))),
});
export const floor = unary({ name: "floor", cls: "float", float: Math.floor, wgsl: (a) => `floor(${a})` });
export const ceil = unary({ name: "ceil", cls: "float", float: Math.ceil, wgsl: (a) => `ceil(${a})` });
export const erfPrim = unary({
  name: "erf",
  cls: "float",
  float: erf,
  wgsl: (a, node) => (node.dtype === "f16" ? `f16(df_erf(f32(${a})))` : `df_erf(${a})`),
  wgslFunctions: ERF_WGSL,
  // d erf(x)/dx = 2/√π · e^{−x²}
  vjp: (ct, node, b) => {
    const x = x0(node);
    const g = em(b, "mul", full(b, 2 / Math.sqrt(Math.PI), x), em(b, "exp", em(b, "neg", em(b, "mul", x, x))));
    return em(b, "mul", ct, g);
  },
});
