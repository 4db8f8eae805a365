// slice {start, end} (stride 1), pad {low, high} (zeros; the VJP of slice) and concat {axis}.
import type { Primitive } from "../ir/primitive.js";
import type { Node } from "../ir/node.js";
import { DTypeError, ShapeError } from "../errors.js";
import { fmtShape, sameShape, sizeOf, stridesOf } from "../ir/shapes.js";
import { stridedIndex } from "../interpret/strided.js";

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);

function checkPerAxis(op: string, shape: readonly number[], lists: Record<string, readonly number[]>): void {
  for (const [name, l] of Object.entries(lists)) {
    if (!Array.isArray(l) || l.length !== shape.length || !l.every(isInt)) {
      throw new ShapeError(`${op}: ${name} must list one integer per axis of ${fmtShape(shape)}, found ${JSON.stringify(l)}`, op);
    }
  }
}

export const slice: Primitive<{ start: number[]; end: number[] }> = {
  name: "slice",
  kind: "layout",
  arity: 1,
  infer: ([x], a) => {
    const s = x!.shape;
    checkPerAxis("slice", s, { start: a.start, end: a.end });
    s.forEach((d, i) => {
      if (!(0 <= a.start[i]! && a.start[i]! <= a.end[i]! && a.end[i]! <= d)) {
        throw new ShapeError(
          `slice: axis ${i} range [${a.start[i]}, ${a.end[i]}) is not within [0, ${d}] for ${fmtShape(s)} (start ${fmtShape(a.start)}, end ${fmtShape(a.end)})`,
          "slice",
        );
      }
    });
    return { shape: s.map((_, i) => a.end[i]! - a.start[i]!), dtype: x!.dtype };
  },
  evaluate: ([x], node) => {
    const st = stridesOf(node.inputs[0]!.shape);
    const start = node.attrs.start as number[];
    const offset = start.reduce((p, s, i) => p + s * st[i]!, 0);
    const idx = stridedIndex(node.shape, st, offset);
    const out = new Float64Array(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = x![idx[i]!]!;
    return out;
  },
  vjp: (ct, node, b) => {
    const s = node.inputs[0]!.shape;
    const high = s.map((d, i) => d - (node.attrs.end as number[])[i]!);
    return [b.emit("pad", [ct], { low: [...(node.attrs.start as number[])], high })];
  },
};

export const pad: Primitive<{ low: number[]; high: number[] }> = {
  name: "pad",
  kind: "layout",
  arity: 1,
  infer: ([x], a) => {
    const s = x!.shape;
    checkPerAxis("pad", s, { low: a.low, high: a.high });
    if (![...a.low, ...a.high].every((p) => p >= 0)) {
      throw new ShapeError(`pad: low ${fmtShape(a.low)} and high ${fmtShape(a.high)} must be ≥ 0 (use slice to crop) for ${fmtShape(s)}`, "pad");
    }
    return { shape: s.map((d, i) => a.low[i]! + d + a.high[i]!), dtype: x!.dtype };
  },
  evaluate: ([x], node) => {
    const st = stridesOf(node.shape);
    const low = node.attrs.low as number[];
    const offset = low.reduce((p, l, i) => p + l * st[i]!, 0);
    const idx = stridedIndex(node.inputs[0]!.shape, st, offset);
    const out = new Float64Array(sizeOf(node.shape));
    for (let i = 0; i < idx.length; i++) out[idx[i]!] = x![i]!;
    return out;
  },
  vjp: (ct, node, b) => {
    const low = node.attrs.low as number[];
    const end = node.inputs[0]!.shape.map((d, i) => low[i]! + d);
    return [b.emit("slice", [ct], { start: [...low], end })];
  },
};

export const concat: Primitive<{ axis: number }> = {
  name: "concat",
  kind: "layout",
  infer: (xs, a) => {
    if (xs.length === 0) throw new ShapeError("concat: needs at least one input", "concat");
    const s0 = xs[0]!.shape;
    const all = () => xs.map((x) => fmtShape(x.shape)).join(", ");
    if (!isInt(a.axis) || a.axis < 0 || a.axis >= s0.length) {
      throw new ShapeError(`concat: axis ${a.axis} is out of range for inputs ${all()}`, "concat");
    }
    for (const x of xs) {
      const other = (s: readonly number[]) => s.filter((_, i) => i !== a.axis);
      if (x.shape.length !== s0.length || !sameShape(other(x.shape), other(s0))) {
        throw new ShapeError(`concat: inputs must agree on every axis but ${a.axis}: ${all()}`, "concat");
      }
      if (x.dtype !== xs[0]!.dtype) {
        throw new DTypeError(`concat: inputs must share a dtype: ${xs.map((y) => y.dtype).join(", ")}`, "concat");
      }
    }
    const shape = [...s0];
    shape[a.axis] = xs.reduce((p, x) => p + x.shape[a.axis]!, 0);
    return { shape, dtype: xs[0]!.dtype };
  },
  evaluate: (xs, node) => {
    const axis = node.attrs.axis as number;
    const st = stridesOf(node.shape);
    const out = new Float64Array(sizeOf(node.shape));
    let at = 0;
    node.inputs.forEach((inp, k) => {
      const idx = stridedIndex(inp.shape, st, at * st[axis]!);
      const x = xs[k]!;
      for (let i = 0; i < idx.length; i++) out[idx[i]!] = x[i]!;
      at += inp.shape[axis]!;
    });
    return out;
  },
  vjp: (ct, node, b) => {
    const axis = node.attrs.axis as number;
    let at = 0;
    return node.inputs.map((inp: Node) => {
      const start = ct.shape.map((_, i) => (i === axis ? at : 0));
      const end = ct.shape.map((d, i) => (i === axis ? at + inp.shape[axis]! : d));
      at += inp.shape[axis]!;
      return b.emit("slice", [ct], { start, end });
    });
  },
};
