// cast (WGSL conversion semantics), where (select) and stopGradient (identity, zero VJP).
import type { Primitive } from "../ir/primitive.js";
import { DTYPES, type DType, convertValue, isFloat } from "../ir/dtype.js";
import { DTypeError } from "../errors.js";
import { checkClass, checkSame } from "./elementwise-binary.js";
import { full } from "./source.js";

/** `cast {dtype}`: float → int truncates and saturates, i32 ↔ u32 keep the bits, x → bool is x ≠ 0. */
export const cast: Primitive<{ dtype: DType }> = {
  name: "cast",
  kind: "elementwise",
  arity: 1,
  infer: ([x], a) => {
    if (!DTYPES.includes(a.dtype)) throw new DTypeError(`cast: target dtype must be one of ${DTYPES.join(", ")}, found ${String(a.dtype)}`, "cast");
    return { shape: [...x!.shape], dtype: a.dtype };
  },
  evaluate: ([x], node) => {
    const from = node.inputs[0]!.dtype;
    const out = new Float64Array(x!.length);
    for (let i = 0; i < out.length; i++) out[i] = convertValue(from, node.dtype, x![i]!);
    return out;
  },
  vjp: (ct, node, b) => {
    const x = node.inputs[0]!;
    return [isFloat(x.dtype) && isFloat(node.dtype) ? b.emit("cast", [ct], { dtype: x.dtype }) : null];
  },
  wgsl: ([a], node) => `${node.dtype}(${a})`,
};

/** `where(cond, a, b)`: a where cond, else b; all three the same shape. */
export const where: Primitive = {
  name: "where",
  kind: "elementwise",
  arity: 3,
  infer: ([c, a, b]) => {
    checkClass("where", "bool", c!.dtype);
    checkSame("where", [a!, b!]);
    checkSame("where", [{ shape: c!.shape, dtype: a!.dtype }, a!, b!], ["cond", "a", "b"]);
    return { shape: [...a!.shape], dtype: a!.dtype };
  },
  evaluate: ([c, a, b]) => {
    const out = new Float64Array(a!.length);
    for (let i = 0; i < out.length; i++) out[i] = c![i] !== 0 ? a![i]! : b![i]!;
    return out;
  },
  vjp: (ct, node, b) => {
    const c = node.inputs[0]!;
    const zero = full(b, 0, ct);
    return [null, b.emit("where", [c, ct, zero]), b.emit("where", [c, zero, ct])];
  },
  wgsl: ([c, a, b]) => `select(${b}, ${a}, ${c})`,
};

/** Identity in value, zero in gradient. The compiler drops it. */
export const stopGradient: Primitive = {
  name: "stopGradient",
  kind: "elementwise",
  arity: 1,
  infer: ([x]) => ({ shape: [...x!.shape], dtype: x!.dtype }),
  evaluate: ([x]) => x!.slice(),
  vjp: () => [null],
  wgsl: ([a]) => a!,
};
