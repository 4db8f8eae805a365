// Numeric checks for tests, independent of the code under test: relative error, central
// finite differences, and row-major index arithmetic for writing naive reference loops.

/** ‖out − ref‖₂ / ‖ref‖₂ (or ‖out‖₂ when ref is all zeros). */
export function relErr(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (out[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Throws, showing the worst element, unless relErr(out, ref) ≤ tol. */
export function expectClose(out: ArrayLike<number>, ref: ArrayLike<number>, tol: number, what = "value"): void {
  if (out.length !== ref.length) throw new Error(`${what}: length ${out.length}, expected ${ref.length}`);
  const e = relErr(out, ref);
  if (e <= tol && !Number.isNaN(e)) return;
  let worst = 0;
  for (let i = 1; i < ref.length; i++) if (Math.abs(out[i]! - ref[i]!) > Math.abs(out[worst]! - ref[worst]!)) worst = i;
  throw new Error(`${what}: relative error ${e.toExponential(3)} > ${tol} (worst at ${worst}: got ${out[worst]}, expected ${ref[worst]})`);
}

/** Throws unless the two arrays are equal element for element (Object.is, except 0 === -0). */
export function expectEqual(out: ArrayLike<number>, ref: ArrayLike<number>, what = "value"): void {
  if (out.length !== ref.length) throw new Error(`${what}: length ${out.length}, expected ${ref.length}`);
  for (let i = 0; i < ref.length; i++) {
    const a = out[i]!;
    const b = ref[i]!;
    if (!(a === b || (Number.isNaN(a) && Number.isNaN(b)))) throw new Error(`${what}: element ${i} is ${a}, expected ${b}`);
  }
}

/**
 * Central finite differences of a scalar function: ∂f/∂xs[k][j] for every j, with the step
 * scaled to each coordinate's magnitude. Evaluate `f` in float64.
 */
export function finiteDiff(f: (xs: Float64Array[]) => number, xs: readonly Float64Array[], k: number, eps = 1e-6): Float64Array {
  const args = xs.map((x) => x.slice());
  const x = args[k]!;
  const g = new Float64Array(x.length);
  for (let j = 0; j < x.length; j++) {
    const v = x[j]!;
    const h = eps * Math.max(1, Math.abs(v));
    x[j] = v + h;
    const up = f(args);
    x[j] = v - h;
    const down = f(args);
    x[j] = v;
    g[j] = (up - down) / (2 * h);
  }
  return g;
}

/** Σ a·b */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export const size = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

/** Flat row-major offset of a multi-index. */
export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let f = 0;
  for (let i = 0; i < shape.length; i++) f = f * shape[i]! + idx[i]!;
  return f;
}

/** Multi-index of a flat row-major offset. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i]!;
    flat = Math.floor(flat / shape[i]!);
  }
  return idx;
}

/** Builds a row-major array of `shape` from a function of the multi-index. */
export function tabulate(shape: readonly number[], f: (idx: number[]) => number): Float64Array {
  const n = size(shape);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f(unravel(i, shape));
  return out;
}
