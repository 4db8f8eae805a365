// Reductions: reduceSum and reduceMax over a set of axes, which are removed from the shape
// (keepDims is a frontend reshape).
import type { Emitter, Primitive } from "../ir/primitive.js";
import type { Node } from "../ir/node.js";
import { wrapInt } from "../ir/dtype.js";
import { normalizeAxes, sizeOf, stridesOf } from "../ir/shapes.js";
import { stridedIndex } from "../interpret/strided.js";
import { checkClass } from "./elementwise-binary.js";

type ReduceAttrs = { axes: number[] };

function reducedShape(op: string, shape: readonly number[], axes: readonly number[]): number[] {
  const ax = normalizeAxes(op, axes, shape.length, shape);
  return shape.filter((_, i) => !ax.includes(i));
}

/** For each input element (row-major), the flat index of the output element it reduces into. */
function reduceTargets(shape: readonly number[], axes: readonly number[]): Float64Array {
  const ax = normalizeAxes("reduce", axes, shape.length);
  const outShape = shape.filter((_, i) => !ax.includes(i));
  const outStrides = stridesOf(outShape);
  let k = 0;
  const strides = shape.map((_, i) => (ax.includes(i) ? 0 : outStrides[k++]!));
  return stridedIndex(shape, strides);
}

/**
 * `ct` (the reduced shape) broadcast back over the input's shape: reshape to keep the
 * reduced axes as 1, then broadcast. Shared by the reduceSum and reduceMax rules.
 */
export function unreduce(b: Emitter, ct: Node, shape: readonly number[], axes: readonly number[]): Node {
  const ax = normalizeAxes("reduce", axes, shape.length);
  const kept = shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const r = b.emit("reshape", [ct], { shape: kept });
  return b.emit("broadcast", [r], { shape: [...shape] });
}

export const reduceSum: Primitive<ReduceAttrs> = {
  name: "reduceSum",
  kind: "reduce",
  arity: 1,
  infer: ([x], a) => {
    checkClass("reduceSum", "numeric", x!.dtype);
    return { shape: reducedShape("reduceSum", x!.shape, a.axes), dtype: x!.dtype };
  },
  evaluate: ([x], node) => {
    const t = reduceTargets(node.inputs[0]!.shape, node.attrs.axes as number[]);
    const out = new Float64Array(sizeOf(node.shape));
    for (let i = 0; i < t.length; i++) out[t[i]!] += x![i]!;
    // integer sums are exact in float64 up to 2^53, so wrapping once at the end equals wrapping per step
    if (node.dtype !== "f32" && node.dtype !== "f16") for (let i = 0; i < out.length; i++) out[i] = wrapInt(node.dtype, out[i]!);
    return out;
  },
  vjp: (ct, node, b) => [unreduce(b, ct, node.inputs[0]!.shape, node.attrs.axes as number[])],
};

export const reduceMax: Primitive<ReduceAttrs> = {
  name: "reduceMax",
  kind: "reduce",
  arity: 1,
  infer: ([x], a) => {
    checkClass("reduceMax", "numeric", x!.dtype);
    return { shape: reducedShape("reduceMax", x!.shape, a.axes), dtype: x!.dtype };
  },
  evaluate: ([x], node) => {
    const t = reduceTargets(node.inputs[0]!.shape, node.attrs.axes as number[]);
    const out = new Float64Array(sizeOf(node.shape)).fill(-Infinity);
    for (let i = 0; i < t.length; i++) {
      const v = x![i]!;
      const o = t[i]!;
      if (v > out[o]! || Number.isNaN(v)) out[o] = v;
    }
    return out;
  },
  // The gradient goes to the elements equal to the max, split evenly between ties (as JAX).
  vjp: (ct, node, b) => {
    const x = node.inputs[0]!;
    const axes = node.attrs.axes as number[];
    const mask = b.emit("cast", [b.emit("eq", [x, unreduce(b, node, x.shape, axes)])], { dtype: x.dtype });
    const count = b.emit("reduceSum", [mask], { axes });
    const share = unreduce(b, b.emit("div", [ct, count]), x.shape, axes);
    return [b.emit("mul", [share, mask])];
  },
};
