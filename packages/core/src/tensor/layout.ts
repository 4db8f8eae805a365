// Trace-time halves of the layout rules (the type-level halves are in layout-types.ts):
// negative axes, -1 in reshape, named dimensions and range checks are resolved here, so the
// primitives only ever see concrete, normalized attributes.
import { checkPerm, fmtShape, normalizeAxes, resolveReshape, sameShape } from "../ir/shapes.js";
import { type AnyTensor, atSite, broadcastTo as broadcastToShape, emit, fmtT, resolveShape, shapeError } from "./emit.js";
import type { Dim } from "./shape-types.js";
import type { SliceRange } from "./layout-types.js";

/** Normalizes one axis against `rank`; throws a ShapeError naming `op` and the shape. */
export function axisOf(op: string, axis: number, rank: number, shape: readonly number[]): number {
  return atSite(() => normalizeAxes(op, [axis], rank, shape)[0]!);
}

export function reshape(x: AnyTensor, shape: readonly Dim[]): AnyTensor {
  const to = resolveShape("reshape", shape);
  const out = atSite(() => resolveReshape("reshape", x.shape, to));
  return sameShape(out, x.shape) ? x : emit("reshape", [x], { shape: out });
}

export function transpose(x: AnyTensor, perm?: readonly number[]): AnyTensor {
  const rank = x.rank;
  const p = perm ? perm.map((a) => (Number.isInteger(a) && a < 0 ? a + rank : a)) : x.shape.map((_, i) => rank - 1 - i);
  atSite(() => checkPerm("transpose", p, x.shape));
  return p.every((a, i) => a === i) ? x : emit("transpose", [x], { perm: p });
}

/** The last two axes swapped. */
export function swapLast(x: AnyTensor): AnyTensor {
  if (x.rank < 2) shapeError("mT", `needs rank >= 2, found ${fmtT(x)}`);
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return emit("transpose", [x], { perm });
}

export function expandDims(x: AnyTensor, axis: number): AnyTensor {
  const a = axisOf("expandDims", axis, x.rank + 1, x.shape);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return emit("reshape", [x], { shape });
}

export function squeeze(x: AnyTensor, axis: number | readonly number[]): AnyTensor {
  const axes = atSite(() => normalizeAxes("squeeze", typeof axis === "number" ? [axis] : axis, x.rank, x.shape));
  for (const a of axes) if (x.shape[a] !== 1) shapeError("squeeze", `axis ${a} of ${fmtT(x)} has size ${x.shape[a]}, not 1`);
  return emit("reshape", [x], { shape: x.shape.filter((_, i) => !axes.includes(i)) });
}

export function broadcastTo(x: AnyTensor, shape: readonly Dim[]): AnyTensor {
  return broadcastToShape("broadcastTo", x, resolveShape("broadcastTo", shape));
}

/** Per-axis ranges, `null` keeping an axis whole; negative bounds count from the end. */
export function slice(x: AnyTensor, ranges: readonly SliceRange[]): AnyTensor {
  if (ranges.length > x.rank) shapeError("slice", `${ranges.length} ranges for the ${x.rank} axes of ${fmtT(x)}`);
  const start = x.shape.map(() => 0);
  const end = [...x.shape];
  ranges.forEach((r, i) => {
    if (r === null) return;
    const d = x.shape[i]!;
    const norm = (v: number): number => (v < 0 ? v + d : v);
    const s = norm(r[0]);
    const e = r.length > 1 ? norm(r[1]!) : d;
    if (!(Number.isInteger(s) && Number.isInteger(e) && 0 <= s && s <= e && e <= d)) {
      shapeError("slice", `range ${JSON.stringify(r)} on axis ${i} does not fit ${fmtT(x)} (size ${d})`);
    }
    start[i] = s;
    end[i] = e;
  });
  if (sameShape(start, x.shape.map(() => 0)) && sameShape(end, x.shape)) return x;
  return emit("slice", [x], { start, end });
}

export function concat(xs: readonly AnyTensor[], axis: number): AnyTensor {
  if (xs.length === 0) shapeError("concat", "needs at least one tensor");
  const first = xs[0]!;
  const a = axisOf("concat", axis, first.rank, first.shape);
  for (const t of xs) {
    const ok = t.rank === first.rank && t.shape.every((d, i) => i === a || d === first.shape[i]);
    if (!ok) shapeError("concat", `shapes must agree except on axis ${a}: ${xs.map(fmtT).join(", ")}`);
    if (t.dtype !== first.dtype) shapeError("concat", `dtypes differ: ${xs.map(fmtT).join(", ")}`);
  }
  return xs.length === 1 ? first : emit("concat", xs, { axis: a });
}

/** Rows of `x` along `axis` picked by integer `idx`: shape `x[:axis] ++ idx ++ x[axis+1:]`. */
export function gather(x: AnyTensor, idx: AnyTensor, axis: number): AnyTensor {
  const a = axisOf("gather", axis, x.rank, x.shape);
  if (idx.dtype !== "i32" && idx.dtype !== "u32") shapeError("gather", `indices must be i32 or u32, found ${fmtT(idx)}`);
  return emit("gather", [x, idx], { axis: a });
}

/** Shape text for messages about tensors and plain shapes alike. */
export const fmtDims = (s: readonly Dim[]): string => fmtShape(s as readonly number[]);
