// Reductions with the frontend's conveniences (negative axes, keepDims, mean, min, argmax)
// over the two reduce primitives, and matmul with numpy's batch broadcasting over the
// `matmul` primitive (which wants identical batch dimensions).
import { broadcastShapes, fmtShape, normalizeAxes, sizeOf } from "../ir/shapes.js";
import { DTypeError } from "../errors.js";
import { callSite } from "../trace/site.js";
import { type AnyTensor, atSite, binary, broadcastTo, emit, fmtT, scalar, shapeError } from "./emit.js";
import type { Axes } from "./layout-types.js";

function axesOf(op: string, x: AnyTensor, axis: Axes): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  return atSite(() => normalizeAxes(op, typeof axis === "number" ? [axis] : axis, x.rank, x.shape));
}

function keep(x: AnyTensor, r: AnyTensor, axes: readonly number[], keepDims: boolean): AnyTensor {
  if (!keepDims) return r;
  return emit("reshape", [r], { shape: x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) });
}

function reduce(prim: "reduceSum" | "reduceMax", op: string, x: AnyTensor, axis: Axes, keepDims: boolean): AnyTensor {
  const axes = axesOf(op, x, axis);
  if (axes.length === 0) return x;
  return keep(x, emit(prim, [x], { axes }), axes, keepDims);
}

export const sum = (x: AnyTensor, axis?: Axes, keepDims = false): AnyTensor => reduce("reduceSum", "sum", x, axis, keepDims);

export const max = (x: AnyTensor, axis?: Axes, keepDims = false): AnyTensor => reduce("reduceMax", "max", x, axis, keepDims);

export function min(x: AnyTensor, axis?: Axes, keepDims = false): AnyTensor {
  if (x.dtype === "u32" || x.dtype === "bool") throw new DTypeError(`min: expects f32, f16 or i32, found ${x.dtype}`, "min", callSite());
  return emit("neg", [reduce("reduceMax", "min", emit("neg", [x]), axis, keepDims)]);
}

export function mean(x: AnyTensor, axis?: Axes, keepDims = false): AnyTensor {
  const axes = axesOf("mean", x, axis);
  const n = sizeOf(axes.map((a) => x.shape[a]!));
  return binary("div", sum(x, axes, keepDims), scalar(n, x.dtype));
}

/** Index of the first maximum along `axis`, as i32. */
export function argmax(x: AnyTensor, axis: number, keepDims = false): AnyTensor {
  const [a] = axesOf("argmax", x, axis);
  const m = broadcastTo("argmax", max(x, a, true), x.shape);
  const idx = emit("iota", [], { shape: [...x.shape], axis: a!, dtype: "i32" });
  const candidates = emit("where", [emit("eq", [x, m]), idx, broadcastTo("argmax", scalar(x.shape[a!]!, "i32"), x.shape)]);
  return min(candidates, a, keepDims);
}

/**
 * `[...B, m, k] @ [...B', k, n]`, the batch dimensions broadcast. A right operand without
 * batch dimensions (the weights of a layer) multiplies the flattened left operand in one 2-D
 * matmul instead of being broadcast over the batch.
 */
export function matmul(a: AnyTensor, b: AnyTensor): AnyTensor {
  if (a.rank < 2 || b.rank < 2) shapeError("matmul", `operands need rank >= 2 (use expandDims): ${fmtT(a)} @ ${fmtT(b)}`);
  if (a.dtype !== b.dtype) throw new DTypeError(`matmul: dtypes differ: ${fmtT(a)} @ ${fmtT(b)}`, "matmul", callSite());
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [k2, n] = b.shape.slice(-2) as [number, number];
  if (k !== k2) shapeError("matmul", `contracting dimensions differ: ${fmtT(a)} @ ${fmtT(b)} (${k} vs ${k2})`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  if (batchB.length === 0 && batchA.length > 0) {
    const flat = emit("reshape", [a], { shape: [sizeOf(batchA) * m, k] });
    return emit("reshape", [emit("matmul", [flat, b])], { shape: [...batchA, m, n] });
  }
  const batch = atSite(() => {
    try {
      return broadcastShapes("matmul", batchA, batchB);
    } catch {
      return shapeError("matmul", `batch dimensions do not broadcast: ${fmtT(a)} @ ${fmtT(b)} (${fmtShape(batchA)} vs ${fmtShape(batchB)})`);
    }
  });
  const x = broadcastTo("matmul", a, [...batch, m, k]);
  const y = broadcastTo("matmul", b, [...batch, k, n]);
  return emit("matmul", [x, y]);
}
