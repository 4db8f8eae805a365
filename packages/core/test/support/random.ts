// Seeded randomness for tests. Every test that draws random inputs runs inside `withSeed`, which
// picks a fresh seed (or DORAFUSE_SEED, to replay one) and names it in any failure message.
// The generator (splitmix32) is deliberately unrelated to the library's threefry.

export class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x9e3779b9) >>> 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  }
  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  /** Integer in [lo, hi], both ends included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  shuffle<T>(xs: readonly T[]): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }
}

/** DORAFUSE_SEED if set (to replay a failure), else a fresh seed. */
export function testSeed(): number {
  const env = process.env.DORAFUSE_SEED;
  return env ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}

/** Runs `fn` with a seeded Rng; a failure's message starts with the seed and how to replay it. */
export function withSeed<T>(fn: (rng: Rng) => T): T {
  const seed = testSeed();
  const tag = (e: unknown): never => {
    if (e instanceof Error) e.message = `[seed ${seed}; replay with DORAFUSE_SEED=${seed}] ${e.message}`;
    throw e;
  };
  try {
    const r = fn(new Rng(seed));
    if (r instanceof Promise) return r.catch(tag) as T;
    return r;
  } catch (e) {
    return tag(e);
  }
}

/** `n` values uniform in [lo, hi); with `minAbs`, magnitudes stay ≥ minAbs (away from kinks and poles). */
export function randomArray(rng: Rng, n: number, opts: { lo?: number; hi?: number; minAbs?: number } = {}): Float64Array {
  const { lo = -1, hi = 1, minAbs = 0 } = opts;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = rng.uniform(lo, hi);
    while (Math.abs(v) < minAbs) v = rng.uniform(lo, hi);
    out[i] = v;
  }
  return out;
}

/** Random integers in [lo, hi]. */
export function randomInts(rng: Rng, n: number, lo: number, hi: number): Float64Array {
  return Float64Array.from({ length: n }, () => rng.int(lo, hi));
}

/** A shape of the given rank with dims in [1, max]; size-1 dims come up often on purpose. */
export function randomShape(rng: Rng, rank: number, max = 4): number[] {
  return Array.from({ length: rank }, () => (rng.next() < 0.25 ? 1 : rng.int(1, max)));
}
