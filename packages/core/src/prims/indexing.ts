// gather {axis} and its transpose scatterAdd {axis, shape}. Indices are i32 (or u32) and are
// CLAMPED into [0, n−1], in both ops, so scatterAdd stays the exact transpose of gather
// (JAX's gather clamps as well). The compiler's kernels must clamp the same way.
import type { Primitive, TypeInfo } from "../ir/primitive.js";
import { type DType, isFloat, wrapInt } from "../ir/dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { checkShape, fmtShape, sameShape, sizeOf } from "../ir/shapes.js";

function checkIndex(op: string, idx: TypeInfo): void {
  if (idx.dtype !== "i32" && idx.dtype !== "u32") throw new DTypeError(`${op}: indices must be i32 or u32, found ${idx.dtype}`, op);
}

function checkAxis(op: string, axis: number, shape: readonly number[]): void {
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for ${fmtShape(shape)}`, op);
  }
}

/** `x[:axis] ++ idx.shape ++ x[axis+1:]` */
const gatheredShape = (x: readonly number[], idx: readonly number[], axis: number): number[] => [
  ...x.slice(0, axis),
  ...idx,
  ...x.slice(axis + 1),
];

/** Sizes of the blocks before and after `axis`: the loops of both ops are (pre, index, post). */
function blocks(shape: readonly number[], axis: number): { pre: number; n: number; post: number } {
  return { pre: sizeOf(shape.slice(0, axis)), n: shape[axis]!, post: sizeOf(shape.slice(axis + 1)) };
}

const clamp = (i: number, n: number): number => (i < 0 ? 0 : i >= n ? n - 1 : i);

export const gather: Primitive<{ axis: number }> = {
  name: "gather",
  kind: "gather",
  arity: 2,
  infer: ([x, idx], a) => {
    checkIndex("gather", idx!);
    checkAxis("gather", a.axis, x!.shape);
    if (x!.shape[a.axis] === 0) throw new ShapeError(`gather: cannot index an empty axis ${a.axis} of ${fmtShape(x!.shape)}`, "gather");
    return { shape: gatheredShape(x!.shape, idx!.shape, a.axis), dtype: x!.dtype };
  },
  evaluate: ([x, idx], node) => {
    const { pre, n, post } = blocks(node.inputs[0]!.shape, node.attrs.axis as number);
    const m = idx!.length;
    const out = new Float64Array(pre * m * post);
    for (let p = 0; p < pre; p++) {
      for (let j = 0; j < m; j++) {
        const src = (p * n + clamp(idx![j]!, n)) * post;
        const dst = (p * m + j) * post;
        for (let q = 0; q < post; q++) out[dst + q] = x![src + q]!;
      }
    }
    return out;
  },
  vjp: (ct, node, b) => {
    const [x, idx] = node.inputs;
    return [b.emit("scatterAdd", [idx!, ct], { axis: node.attrs.axis!, shape: [...x!.shape] }), null];
  },
};

export const scatterAdd: Primitive<{ axis: number; shape: number[] }> = {
  name: "scatterAdd",
  kind: "scatter",
  arity: 2,
  infer: ([idx, upd], a) => {
    checkIndex("scatterAdd", idx!);
    checkShape("scatterAdd", a.shape, "target shape");
    checkAxis("scatterAdd", a.axis, a.shape);
    if (a.shape[a.axis] === 0) throw new ShapeError(`scatterAdd: cannot scatter into an empty axis ${a.axis} of ${fmtShape(a.shape)}`, "scatterAdd");
    const want = gatheredShape(a.shape, idx!.shape, a.axis);
    if (!sameShape(upd!.shape, want)) {
      throw new ShapeError(
        `scatterAdd: updates must be ${fmtShape(want)} for target ${fmtShape(a.shape)}, indices ${fmtShape(idx!.shape)}, axis ${a.axis}; found ${fmtShape(upd!.shape)}`,
        "scatterAdd",
      );
    }
    if (upd!.dtype === "bool") throw new DTypeError("scatterAdd: updates must be numeric, found bool", "scatterAdd");
    return { shape: [...a.shape], dtype: upd!.dtype as DType };
  },
  evaluate: ([idx, upd], node) => {
    const { pre, n, post } = blocks(node.shape, node.attrs.axis as number);
    const m = idx!.length;
    const out = new Float64Array(sizeOf(node.shape));
    for (let p = 0; p < pre; p++) {
      for (let j = 0; j < m; j++) {
        const dst = (p * n + clamp(idx![j]!, n)) * post;
        const src = (p * m + j) * post;
        for (let q = 0; q < post; q++) out[dst + q] += upd![src + q]!;
      }
    }
    if (!isFloat(node.dtype)) for (let i = 0; i < out.length; i++) out[i] = wrapInt(node.dtype, out[i]!);
    return out;
  },
  vjp: (ct, node, b) => {
    const idx = node.inputs[0]!;
    return [null, b.emit("gather", [ct, idx], { axis: node.attrs.axis! })];
  },
};
