// Comparisons (eq ne lt le gt ge → bool) and logic on bools (and or not). No gradients flow
// through them: their results are bool.
import type { Primitive } from "../ir/primitive.js";
import { checkClass, checkSame, type DTypeClass } from "./elementwise-binary.js";

function compare(name: string, cls: DTypeClass, f: (x: number, y: number) => boolean, wgslOp: string): Primitive {
  return {
    name,
    kind: "elementwise",
    arity: 2,
    infer: (xs) => {
      checkSame(name, xs);
      checkClass(name, cls, xs[0]!.dtype);
      return { shape: [...xs[0]!.shape], dtype: "bool" };
    },
    evaluate: ([a, b]) => {
      const out = new Float64Array(a!.length);
      for (let i = 0; i < out.length; i++) out[i] = f(a![i]!, b![i]!) ? 1 : 0;
      return out;
    },
    vjp: () => [null, null],
    wgsl: ([a, b]) => `(${a} ${wgslOp} ${b})`,
  };
}

export const eq = compare("eq", "any", (x, y) => x === y, "==");
export const ne = compare("ne", "any", (x, y) => x !== y, "!=");
export const lt = compare("lt", "numeric", (x, y) => x < y, "<");
export const le = compare("le", "numeric", (x, y) => x <= y, "<=");
export const gt = compare("gt", "numeric", (x, y) => x > y, ">");
export const ge = compare("ge", "numeric", (x, y) => x >= y, ">=");
export const and = compare("and", "bool", (x, y) => x !== 0 && y !== 0, "&&");
export const or = compare("or", "bool", (x, y) => x !== 0 || y !== 0, "||");

export const not: Primitive = {
  name: "not",
  kind: "elementwise",
  arity: 1,
  infer: ([x]) => {
    checkClass("not", "bool", x!.dtype);
    return { shape: [...x!.shape], dtype: "bool" };
  },
  evaluate: ([x]) => x!.map((v) => (v !== 0 ? 0 : 1)),
  vjp: () => [null],
  wgsl: ([a]) => `(!${a})`,
};
