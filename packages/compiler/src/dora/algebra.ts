// A tiny commutative algebra for recognizing DoRA whatever way it was written: a value is a
// polynomial with float coefficients over named atoms (x·Wᵀ, (x·Aᵀ)·Bᵀ, g, a bias, …). Two
// expressions that differ only in operand order, grouping, subtraction versus negation or
// where the constants were multiplied in have the same polynomial, so the recognizer compares
// polynomials instead of matching graph shapes.

/** monomial (atom keys sorted and joined by "*"; "" is the constant term) → coefficient */
export type Poly = ReadonlyMap<string, number>;

export const constant = (c: number): Poly => new Map(c === 0 ? [] : [["", c]]);
export const atom = (key: string): Poly => new Map([[key, 1]]);

function put(m: Map<string, number>, k: string, c: number): void {
  const v = (m.get(k) ?? 0) + c;
  if (v === 0) m.delete(k);
  else m.set(k, v);
}

export function add(a: Poly, b: Poly, sign = 1): Poly {
  const m = new Map(a);
  for (const [k, c] of b) put(m, k, sign * c);
  return m;
}

export const scale = (a: Poly, s: number): Poly => new Map(s === 0 ? [] : [...a].map(([k, c]) => [k, c * s] as const));

const joinMono = (x: string, y: string): string => [...x.split("*"), ...y.split("*")].filter(Boolean).sort().join("*");

export function mul(a: Poly, b: Poly): Poly {
  const m = new Map<string, number>();
  for (const [ka, ca] of a) for (const [kb, cb] of b) put(m, joinMono(ka, kb), ca * cb);
  return m;
}

/** The factors of a monomial. */
export const factors = (mono: string): string[] => (mono === "" ? [] : mono.split("*"));

/** Equal up to a relative tolerance per coefficient (constants may have been rounded to f32). */
export function samePoly(a: Poly, b: Poly, tol = 1e-6): boolean {
  const keys = new Set([...a.keys(), ...b.keys()]);
  for (const k of keys) {
    const x = a.get(k) ?? 0;
    const y = b.get(k) ?? 0;
    if (Math.abs(x - y) > tol * Math.max(Math.abs(x), Math.abs(y))) return false;
  }
  return true;
}

export const printPoly = (p: Poly): string => [...p].map(([k, c]) => `${c}${k ? `·${k}` : ""}`).join(" + ") || "0";
