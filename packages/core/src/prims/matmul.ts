// matmul: a [...B, m, k] × b [...B, k, n] → [...B, m, n], batch dims identical (rank ≥ 2).
import type { Emitter, Primitive } from "../ir/primitive.js";
import type { Node } from "../ir/node.js";
import { DTypeError, ShapeError } from "../errors.js";
import { fmtShape, sameShape } from "../ir/shapes.js";
import { checkClass } from "./elementwise-binary.js";

/** Swaps the last two axes (the matmul VJP's transposes). */
export function transposeLast2(b: Emitter, x: Node): Node {
  const r = x.shape.length;
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  return b.emit("transpose", [x], { perm });
}

export const matmul: Primitive = {
  name: "matmul",
  kind: "matmul",
  arity: 2,
  infer: ([a, b]) => {
    const as = a!.shape;
    const bs = b!.shape;
    const ab = `a is ${fmtShape(as)}, b is ${fmtShape(bs)}`;
    if (as.length < 2 || bs.length < 2) throw new ShapeError(`matmul: both inputs need rank ≥ 2: ${ab}`, "matmul");
    if (as.length !== bs.length || !sameShape(as.slice(0, -2), bs.slice(0, -2))) {
      throw new ShapeError(
        `matmul: batch dimensions differ: ${ab} (${fmtShape(as.slice(0, -2))} ≠ ${fmtShape(bs.slice(0, -2))}; broadcast them first)`,
        "matmul",
      );
    }
    const k = as[as.length - 1]!;
    const k2 = bs[bs.length - 2]!;
    if (k !== k2) throw new ShapeError(`matmul: inner dimensions differ: ${ab} (${k} ≠ ${k2})`, "matmul");
    if (a!.dtype !== b!.dtype) throw new DTypeError(`matmul: dtypes differ: a is ${a!.dtype}, b is ${b!.dtype}`, "matmul");
    checkClass("matmul", "numeric", a!.dtype);
    return { shape: [...as.slice(0, -1), bs[bs.length - 1]!], dtype: a!.dtype };
  },
  evaluate: ([a, b], node) => {
    const as = node.inputs[0]!.shape;
    const r = as.length;
    const m = as[r - 2]!;
    const k = as[r - 1]!;
    const n = node.shape[r - 1]!;
    const batch = as.slice(0, -2).reduce((p, d) => p * d, 1);
    const out = new Float64Array(batch * m * n);
    const int = node.dtype === "i32" || node.dtype === "u32";
    for (let p = 0; p < batch; p++) {
      const ao = p * m * k;
      const bo = p * k * n;
      const oo = p * m * n;
      for (let i = 0; i < m; i++) {
        for (let l = 0; l < k; l++) {
          const av = a![ao + i * k + l]!;
          const row = bo + l * n;
          const orow = oo + i * n;
          if (int) for (let j = 0; j < n; j++) out[orow + j] = (out[orow + j]! + Math.imul(av, b![row + j]!)) | 0;
          else for (let j = 0; j < n; j++) out[orow + j] += av * b![row + j]!;
        }
      }
    }
    if (node.dtype === "u32") for (let i = 0; i < out.length; i++) out[i] = out[i]! >>> 0;
    return out;
  },
  // ga = ct · bᵀ, gb = aᵀ · ct (per batch)
  vjp: (ct, node, b) => {
    const [x, y] = node.inputs as [Node, Node];
    return [b.emit("matmul", [ct, transposeLast2(b, y)]), b.emit("matmul", [transposeLast2(b, x), ct])];
  },
};
