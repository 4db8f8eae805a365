// Layout: reshape (same elements, new shape), transpose (permute axes) and broadcast (numpy
// rules, right-aligned: each input dim is 1 or equal to the target's).
import type { Primitive } from "../ir/primitive.js";
import type { Node } from "../ir/node.js";
import { ShapeError } from "../errors.js";
import { broadcastsTo, checkPerm, checkShape, fmtShape, inversePerm, sizeOf, stridesOf } from "../ir/shapes.js";
import { stridedIndex } from "../interpret/strided.js";

/** Gathers `x` through a strided index map into a fresh array. */
function take(x: Float64Array, idx: Float64Array): Float64Array {
  const out = new Float64Array(idx.length);
  for (let i = 0; i < idx.length; i++) out[i] = x[idx[i]!]!;
  return out;
}

export const reshape: Primitive<{ shape: number[] }> = {
  name: "reshape",
  kind: "layout",
  arity: 1,
  infer: ([x], a) => {
    checkShape("reshape", a.shape, "target shape");
    if (sizeOf(a.shape) !== sizeOf(x!.shape)) {
      throw new ShapeError(
        `reshape: cannot reshape ${fmtShape(x!.shape)} (${sizeOf(x!.shape)} elements) to ${fmtShape(a.shape)} (${sizeOf(a.shape)} elements)`,
        "reshape",
      );
    }
    return { shape: [...a.shape], dtype: x!.dtype };
  },
  evaluate: ([x]) => x!.slice(),
  vjp: (ct, node, b) => [b.emit("reshape", [ct], { shape: [...node.inputs[0]!.shape] })],
};

export const transpose: Primitive<{ perm: number[] }> = {
  name: "transpose",
  kind: "layout",
  arity: 1,
  infer: ([x], a) => {
    checkPerm("transpose", a.perm, x!.shape);
    return { shape: a.perm.map((p) => x!.shape[p]!), dtype: x!.dtype };
  },
  evaluate: ([x], node) => {
    const perm = node.attrs.perm as number[];
    const st = stridesOf(node.inputs[0]!.shape);
    return take(x!, stridedIndex(node.shape, perm.map((p) => st[p]!)));
  },
  vjp: (ct, node, b) => [b.emit("transpose", [ct], { perm: inversePerm(node.attrs.perm as number[]) })],
};

export const broadcast: Primitive<{ shape: number[] }> = {
  name: "broadcast",
  kind: "layout",
  arity: 1,
  infer: ([x], a) => {
    checkShape("broadcast", a.shape, "target shape");
    if (!broadcastsTo(x!.shape, a.shape)) {
      throw new ShapeError(
        `broadcast: cannot broadcast ${fmtShape(x!.shape)} to ${fmtShape(a.shape)} (right-aligned, each dimension must be 1 or equal)`,
        "broadcast",
      );
    }
    return { shape: [...a.shape], dtype: x!.dtype };
  },
  evaluate: ([x], node) => {
    const from = node.inputs[0]!.shape;
    const off = node.shape.length - from.length;
    const st = stridesOf(from);
    const strides = node.shape.map((_, i) => (i < off || from[i - off] === 1 ? 0 : st[i - off]!));
    return take(x!, stridedIndex(node.shape, strides));
  },
  // Sum over the axes that were added or stretched, then reshape to the input's shape.
  vjp: (ct, node, b) => {
    const x: Node = node.inputs[0]!;
    const off = node.shape.length - x.shape.length;
    const axes = node.shape.map((d, i) => i).filter((i) => i < off || (x.shape[i - off] === 1 && node.shape[i] !== 1));
    const summed = axes.length > 0 ? b.emit("reduceSum", [ct], { axes }) : ct;
    return [summed.shape.length === x.shape.length ? summed : b.emit("reshape", [summed], { shape: [...x.shape] })];
  },
};
