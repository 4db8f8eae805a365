// Index arithmetic as a small typed tree: constants, variables, + − × ÷ mod, min and max over
// u32. The constructors simplify as they build (constants fold, `x * 1u` and `x + 0u` vanish,
// `(x / k) * k + x % k` recombines to `x`, and a variable's known range removes `x % k` and
// `x / k` when x < k), so the printed kernels read like hand-written ones: `i1 * 8u + i2`,
// not `((i1 * 8u) + (i2 * 1u)) + 0u`. Each node carries its printed WGSL, computed once when
// it is built: that text is also its identity (equal text, equal index), which is how fusion
// compares the positions a kernel reads. An index into a tensor is one Ix per dimension
// (`Index`); layout ops map the index of their output to the index of their input
// (kernels/expr.ts).

interface Base {
  /** The WGSL u32 expression. */
  readonly text: string;
  /** Exclusive upper bound of the value, when known. */
  readonly bound: number | undefined;
  /** The text is one token or a call: it needs no parentheses as an operand. */
  readonly atomic: boolean;
  toString(): string;
}

export type Ix =
  | (Base & { readonly k: "lit"; readonly v: number })
  /** A name the kernel defines. With `def`, the emitter declares `let name = def;` where it is first used. */
  | (Base & { readonly k: "var"; readonly name: string; readonly def?: Ix })
  /** A u32 WGSL expression the index does not look into (a value read from a tensor). */
  | (Base & { readonly k: "opaque" })
  | (Base & { readonly k: "add" | "sub" | "min" | "max"; readonly a: Ix; readonly b: Ix })
  | (Base & { readonly k: "mul" | "div" | "mod"; readonly a: Ix; readonly c: number });

/** An index into a tensor: one expression per dimension. */
export type Index = readonly Ix[];

function node<T extends Omit<Ix, keyof Base>>(fields: T, text: string, bound: number | undefined, atomic: boolean): Ix {
  return Object.freeze({ ...fields, text, bound, atomic, toString: () => text }) as unknown as Ix;
}

const operand = (x: Ix): string => (x.atomic ? x.text : `(${x.text})`);

export const lit = (n: number): Ix => {
  const v = n >>> 0;
  return node({ k: "lit", v }, `${v}u`, v + 1, true);
};

/** A variable: a loop counter or index the kernel defines (`bound`: its exclusive upper limit), or with `def`, a `let` the emitter declares. */
export function ixVar(name: string, opts: { bound?: number; def?: Ix } = {}): Ix {
  const bound = opts.bound ?? opts.def?.bound;
  return node({ k: "var", name, ...(opts.def ? { def: opts.def } : {}) }, name, bound, true);
}

/** A u32 expression taken as is (parenthesized where it is an operand, unless it is a call or a name). */
export function opaque(text: string, bound?: number): Ix {
  const atomic = /^[A-Za-z_][A-Za-z0-9_.]*$|^\d+u$/.test(text) || (/^[A-Za-z_][A-Za-z0-9_<>]*\(.*\)$/.test(text) && closesAtEnd(text));
  return node({ k: "opaque" }, text, bound, atomic);
}

/** `f(...)` whose opening parenthesis closes at the last character (not `f(a) + g(b)`). */
function closesAtEnd(s: string): boolean {
  let depth = 0;
  for (let i = s.indexOf("("); i < s.length; i++) {
    if (s[i] === "(") depth++;
    else if (s[i] === ")" && --depth === 0) return i === s.length - 1;
  }
  return false;
}

/** The value of a literal index, or undefined. */
export const litValue = (x: Ix): number | undefined => (x.k === "lit" ? x.v : undefined);

/** Equal indices print alike. */
export const sameIx = (a: Ix, b: Ix): boolean => a.text === b.text;
export const sameIndex = (a: Index, b: Index): boolean => a.length === b.length && a.every((x, i) => sameIx(x, b[i]!));

const sumBound = (a: Ix, b: Ix) => (a.bound !== undefined && b.bound !== undefined ? a.bound + b.bound - 1 : undefined);

export function add(a: Ix, b: Ix): Ix {
  const x = litValue(a);
  const y = litValue(b);
  if (x !== undefined && y !== undefined) return lit(x + y);
  if (x === 0) return b;
  if (y === 0) return a;
  // (t + c1) + c2 = t + (c1 + c2): slices of slices
  if (y !== undefined && a.k === "add" && a.b.k === "lit") return add(a.a, lit(a.b.v + y));
  return recombine(a, b) ?? node({ k: "add", a, b }, `${a.text} + ${b.text}`, sumBound(a, b), false);
}

/**
 * (X / k) * k + X % k = X: what a reshape that splits a dimension and one that merges it back
 * produce. Recognizing it keeps index expressions of reshape round trips identical to the
 * original index, which is what lets a matmul's epilogue or a row kernel read its own result
 * through reshapes (fusion compares indices to decide that).
 */
function recombine(a: Ix, b: Ix): Ix | undefined {
  if (b.k !== "mod" || a.k !== "mul" || a.a.k !== "div") return undefined;
  const k = b.c;
  return a.c === k && a.a.c === k && sameIx(a.a.a, b.a) ? b.a : undefined;
}

export function sub(a: Ix, b: Ix): Ix {
  const x = litValue(a);
  const y = litValue(b);
  if (x !== undefined && y !== undefined) return lit(x - y);
  if (y === 0) return a;
  if (sameIx(a, b)) return lit(0);
  return node({ k: "sub", a, b }, `${a.text} - ${operand(b)}`, a.bound, false);
}

export function mul(a: Ix, k: number): Ix {
  const x = litValue(a);
  if (x !== undefined) return lit(x * k);
  if (k === 0) return lit(0);
  if (k === 1) return a;
  if (a.k === "mul") return mul(a.a, a.c * k);
  return node({ k: "mul", a, c: k }, `${operand(a)} * ${k}u`, a.bound === undefined ? undefined : (a.bound - 1) * k + 1, false);
}

export function div(a: Ix, k: number): Ix {
  const x = litValue(a);
  if (x !== undefined) return lit(Math.floor(x / k));
  if (k === 1) return a;
  if (a.bound !== undefined && a.bound <= k) return lit(0);
  return node({ k: "div", a, c: k }, `${operand(a)} / ${k}u`, a.bound === undefined ? undefined : Math.ceil(a.bound / k), false);
}

export function mod(a: Ix, k: number): Ix {
  const x = litValue(a);
  if (x !== undefined) return lit(x % k);
  if (k === 1) return lit(0);
  if (a.bound !== undefined && a.bound <= k) return a;
  return node({ k: "mod", a, c: k }, `${operand(a)} % ${k}u`, k, false);
}

export function min(a: Ix, b: Ix): Ix {
  const x = litValue(a);
  const y = litValue(b);
  if (x !== undefined && y !== undefined) return lit(Math.min(x, y));
  // a value known to be below a literal bound is its own minimum with it
  if (y !== undefined && a.bound !== undefined && a.bound <= y + 1) return a;
  const bound = a.bound !== undefined && b.bound !== undefined ? Math.min(a.bound, b.bound) : (a.bound ?? b.bound);
  return node({ k: "min", a, b }, `min(${a.text}, ${b.text})`, bound, true);
}

export function max(a: Ix, b: Ix): Ix {
  const x = litValue(a);
  const y = litValue(b);
  if (x !== undefined && y !== undefined) return lit(Math.max(x, y));
  if (y === 0) return a;
  const bound = a.bound !== undefined && b.bound !== undefined ? Math.max(a.bound, b.bound) : undefined;
  return node({ k: "max", a, b }, `max(${a.text}, ${b.text})`, bound, true);
}

/** The `let` variables an index uses, each after the ones its definition uses. */
export function letsOf(xs: readonly Ix[]): Ix[] {
  const out: Ix[] = [];
  const seen = new Set<string>();
  const walk = (x: Ix): void => {
    switch (x.k) {
      case "var":
        if (x.def && !seen.has(x.name)) {
          walk(x.def);
          seen.add(x.name);
          out.push(x);
        }
        return;
      case "add": case "sub": case "min": case "max":
        walk(x.a);
        walk(x.b);
        return;
      case "mul": case "div": case "mod":
        walk(x.a);
        return;
    }
  };
  xs.forEach(walk);
  return out;
}

/** The names an index reads (variables and the names inside opaque expressions). */
export function namesOf(x: Ix): string[] {
  switch (x.k) {
    case "lit": return [];
    case "var": return [x.name];
    case "opaque": return x.text.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
    case "add": case "sub": case "min": case "max": return [...namesOf(x.a), ...namesOf(x.b)];
    default: return namesOf(x.a);
  }
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
 * The index of flat offset `flat` in `shape` as named `let` variables (`i0`, `i1`, … for
 * prefix "i"), each declared by the emitter where it is first used; unit dimensions are 0u.
 */
export function indexLets(flat: Ix, shape: readonly number[], prefix: string): Ix[] {
  return unflatten(flat, shape).map((def, k) => (shape[k] === 1 ? lit(0) : def.k === "var" ? def : ixVar(`${prefix}${k}`, { def, bound: shape[k]! })));
}

/** Index variables for a shape, e0, e1, … each bounded by its dimension (a unit dimension's index is 0u, as in the kernels). */
export const symbolicIndex = (shape: readonly number[], prefix = "e"): Ix[] => shape.map((d, k) => (d === 1 ? lit(0) : ixVar(`${prefix}${k}`, { bound: d })));

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
