// Index arithmetic as WGSL u32 expressions, folded as it is built so that the printed kernels
// read like hand-written ones: `i1 * 8u + i2`, not `((i1 * 8u) + (i2 * 1u)) + 0u`.
// An index into a tensor is one expression per dimension (`Index`); layout ops map the
// index of their output to the index of their input (see kernels/expr.ts).

/** One u32 WGSL expression. */
export type Ix = string;
/** An index into a tensor: one expression per dimension. */
export type Index = readonly Ix[];

const LIT = /^(\d+)u$/;
const ATOM = /^[A-Za-z_][A-Za-z0-9_.]*$|^\d+u$|^\(.*\)$/;

export const lit = (n: number): Ix => `${n >>> 0}u`;

/** The value of a literal index, or undefined. */
export function litValue(x: Ix): number | undefined {
  const m = LIT.exec(x);
  return m ? Number(m[1]) : undefined;
}

/** Parenthesizes unless `x` is already atomic. Nested parentheses like `(a) + (b)` count as compound. */
function atom(x: Ix): Ix {
  if (/^[A-Za-z_][A-Za-z0-9_.]*$|^\d+u$/.test(x)) return x;
  if (/^[A-Za-z_][A-Za-z0-9_]*\(.*\)$/.test(x) && balancedCall(x)) return x;
  if (ATOM.test(x) && balanced(x.slice(1, -1))) return x;
  return `(${x})`;
}

function balanced(s: string): boolean {
  let depth = 0;
  for (const c of s) {
    if (c === "(") depth++;
    else if (c === ")" && --depth < 0) return false;
  }
  return depth === 0;
}

/** `f(...)` whose closing parenthesis is the last character (not `f(a) + g(b)`). */
function balancedCall(s: string): boolean {
  const open = s.indexOf("(");
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === "(") depth++;
    else if (s[i] === ")" && --depth === 0) return i === s.length - 1;
  }
  return false;
}

export function add(a: Ix, b: Ix): Ix {
  const x = litValue(a);
  const y = litValue(b);
  if (x !== undefined && y !== undefined) return lit(x + y);
  if (x === 0) return b;
  if (y === 0) return a;
  return recombine(a, b) ?? `${a} + ${b}`;
}

/**
 * (X / k) * k + X % k = X: what a reshape that splits a dimension and one that merges it back
 * produce. Recognizing it keeps index expressions of reshape round trips identical to the
 * original index, which is what lets a matmul's epilogue or a row kernel read its own result
 * through reshapes (fusion compares index expressions to decide that).
 */
function recombine(a: Ix, b: Ix): Ix | undefined {
  const m = / % (\d+)u$/.exec(b);
  if (!m) return undefined;
  const k = m[1]!;
  const xa = b.slice(0, b.length - m[0].length);
  if (a !== `(${xa} / ${k}u) * ${k}u`) return undefined;
  return xa;
}

export function sub(a: Ix, b: Ix): Ix {
  const x = litValue(a);
  const y = litValue(b);
  if (x !== undefined && y !== undefined) return lit(x - y);
  if (y === 0) return a;
  return `${a} - ${atom(b)}`;
}

export function mul(a: Ix, k: number): Ix {
  const x = litValue(a);
  if (x !== undefined) return lit(x * k);
  if (k === 0) return lit(0);
  if (k === 1) return a;
  return `${atom(a)} * ${lit(k)}`;
}

export function div(a: Ix, k: number): Ix {
  const x = litValue(a);
  if (x !== undefined) return lit(Math.floor(x / k));
  if (k === 1) return a;
  return `${atom(a)} / ${lit(k)}`;
}

export function mod(a: Ix, k: number): Ix {
  const x = litValue(a);
  if (x !== undefined) return lit(x % k);
  if (k === 1) return lit(0);
  return `${atom(a)} % ${lit(k)}`;
}

/** Row-major strides of a shape, in elements. */
export function strides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i]!;
  }
  return st;
}

/** The flat row-major offset of `idx` in `shape` (dimensions of size 1 contribute nothing). */
export function flatten(idx: Index, shape: readonly number[]): Ix {
  const st = strides(shape);
  let out: Ix = lit(0);
  shape.forEach((d, k) => {
    if (d !== 1) out = add(out, mul(idx[k]!, st[k]!));
  });
  return out;
}

/** The index in `shape` of the flat offset `flat` (each dimension as `flat / stride % size`). */
export function unflatten(flat: Ix, shape: readonly number[]): Ix[] {
  const st = strides(shape);
  return shape.map((d, k) => {
    if (d === 1) return lit(0);
    const q = div(flat, st[k]!);
    return k === 0 ? q : mod(q, d);
  });
}

/**
 * Like unflatten, but each dimension divides what the next one left (`(x / 3u) / 4u` rather
 * than `x / 12u`), so that flattening the result again recombines to `x` (see recombine).
 */
export function unflattenNested(flat: Ix, shape: readonly number[]): Ix[] {
  const out: Ix[] = new Array(shape.length);
  let q = flat;
  for (let k = shape.length - 1; k >= 0; k--) {
    const d = shape[k]!;
    if (d === 1) {
      out[k] = lit(0);
      continue;
    }
    out[k] = k === 0 ? q : mod(q, d);
    q = div(q, d);
  }
  return out;
}

/**
 * Maps an index of `to` back to the matching index of `from` for a reshape (same element
 * count). Dimensions are matched in runs whose sizes multiply to the same product, so a
 * reshape that only splits, merges or inserts unit dimensions needs no division at all for
 * the untouched dimensions.
 */
export function reshapeIndex(idx: Index, to: readonly number[], from: readonly number[]): Ix[] {
  const out: Ix[] = new Array(from.length).fill(lit(0));
  let i = 0;
  let j = 0;
  while (i < from.length || j < to.length) {
    // skip unit dimensions on either side: they carry no index
    if (i < from.length && from[i] === 1) {
      out[i] = lit(0);
      i++;
      continue;
    }
    if (j < to.length && to[j] === 1) {
      j++;
      continue;
    }
    if (i >= from.length || j >= to.length) break;
    // grow the run until both sides cover the same number of elements
    let pi = from[i]!;
    let pj = to[j]!;
    let i1 = i + 1;
    let j1 = j + 1;
    while (pi !== pj) {
      if (pi < pj) pi *= from[i1++]!;
      else pj *= to[j1++]!;
    }
    if (i1 - i === 1 && j1 - j === 1) out[i] = idx[j]!;
    else {
      const runTo = to.slice(j, j1);
      const flat = flatten(idx.slice(j, j1), runTo);
      const parts = unflattenNested(flat, from.slice(i, i1));
      parts.forEach((p, k) => (out[i + k] = p));
    }
    i = i1;
    j = j1;
  }
  return out;
}
