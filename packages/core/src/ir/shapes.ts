// Shape arithmetic shared by the primitives' shape rules, the interpreter and the frontend.
// Shapes are concrete here: symbolic dimensions are bound to numbers before a graph is built.
import { ShapeError } from "../errors.js";

export type Shape = readonly number[];

/** `[4,3]` — the form every shape takes in messages and printed graphs. */
export const fmtShape = (s: Shape): string => `[${s.join(",")}]`;

export const sizeOf = (s: Shape): number => s.reduce((n, d) => n * d, 1);

export const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** Row-major strides, in elements. */
export function stridesOf(s: Shape): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i]!;
  }
  return st;
}

const isDim = (d: unknown): d is number => typeof d === "number" && Number.isInteger(d) && d >= 0;

/** Throws unless every entry is a non-negative integer. */
export function checkShape(op: string, s: Shape, what = "shape"): void {
  if (!Array.isArray(s) || !s.every(isDim)) {
    throw new ShapeError(`${op}: ${what} must be a list of non-negative integers, found ${JSON.stringify(s)}`, op);
  }
}

/**
 * Numpy broadcasting, right-aligned: each pair of dimensions is equal or one of them is 1.
 * The frontend uses this to decide which `broadcast` nodes to insert before a binary op.
 */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (let i = 0; i < rank; i++) {
    for (const s of shapes) {
      const d = s[s.length - rank + i] ?? 1;
      const o = out[i]!;
      if (d === o || d === 1) continue;
      if (o === 1) out[i] = d;
      else {
        const axis = i - rank;
        throw new ShapeError(
          `${op}: shapes do not broadcast: ${shapes.map(fmtShape).join(" and ")} (axis ${axis}: ${o} ≠ ${d})`,
          op,
        );
      }
    }
  }
  return out;
}

/** Can `from` be broadcast to exactly `to` (right-aligned, each dim 1 or equal)? */
export function broadcastsTo(from: Shape, to: Shape): boolean {
  if (from.length > to.length) return false;
  const off = to.length - from.length;
  return from.every((d, i) => d === 1 || d === to[i + off]);
}

/**
 * Resolves a reshape target that may hold one -1 (inferred dimension) against `from`.
 * The `reshape` primitive itself takes concrete shapes only; front ends call this first.
 */
export function resolveReshape(op: string, from: Shape, to: readonly number[]): number[] {
  const holes = to.filter((d) => d === -1).length;
  if (holes > 1 || !to.every((d) => d === -1 || isDim(d))) {
    throw new ShapeError(`${op}: target shape ${fmtShape(to)} may hold non-negative sizes and at most one -1`, op);
  }
  const n = sizeOf(from);
  if (holes === 0) {
    if (sizeOf(to) !== n) {
      throw new ShapeError(
        `${op}: cannot reshape ${fmtShape(from)} (${n} elements) to ${fmtShape(to)} (${sizeOf(to)} elements)`,
        op,
      );
    }
    return [...to];
  }
  const known = to.reduce((p, d) => (d === -1 ? p : p * d), 1);
  if (known === 0 || n % known !== 0) {
    throw new ShapeError(`${op}: cannot reshape ${fmtShape(from)} (${n} elements) to ${fmtShape(to)}`, op);
  }
  return to.map((d) => (d === -1 ? n / known : d));
}

/** Normalizes axes (negative counts from the end), checks range and uniqueness, sorts them. */
export function normalizeAxes(op: string, axes: readonly number[], rank: number, shape?: Shape): number[] {
  const out = axes.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      const where = shape ? `shape ${fmtShape(shape)}` : `rank ${rank}`;
      throw new ShapeError(`${op}: axis ${a} is out of range for ${where}`, op);
    }
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) {
    const where = shape ? ` for shape ${fmtShape(shape)}` : "";
    throw new ShapeError(`${op}: repeated axis in ${JSON.stringify(axes)}${where}`, op);
  }
  return out.sort((a, b) => a - b);
}

/** Checks that `perm` is a permutation of 0..rank-1. */
export function checkPerm(op: string, perm: readonly number[], shape: Shape): void {
  const ok = perm.length === shape.length && perm.every((p) => Number.isInteger(p) && p >= 0 && p < shape.length) && new Set(perm).size === perm.length;
  if (!ok) throw new ShapeError(`${op}: perm ${JSON.stringify(perm)} is not a permutation of the axes of ${fmtShape(shape)}`, op);
}

/** The inverse of a permutation: `inversePerm(p)[p[i]] === i`. */
export function inversePerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}
