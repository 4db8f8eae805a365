// Seeded random data for runtime tests. Every test makes its generator with seededRandom()
// and puts `rng.label` in its assertion messages, so a failure prints the seed; set
// DORAFUSE_SEED=<seed> to replay it.

export interface SeededRandom {
  seed: number;
  /** "seed 123456", for assertion messages. */
  label: string;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform floats in [lo, hi), never exactly zero-filled. */
  floats(count: number, lo?: number, hi?: number): Float32Array<ArrayBuffer>;
  /** Uniform integers in [lo, hi). */
  int(lo: number, hi: number): number;
  /** Random bytes. */
  bytes(count: number): Uint8Array<ArrayBuffer>;
}

export function seededRandom(seed = Number(process.env.DORAFUSE_SEED ?? Math.floor(Math.random() * 2 ** 32))): SeededRandom {
  // mulberry32: small, fast and good enough for test data.
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return {
    seed,
    label: `seed ${seed} (replay with DORAFUSE_SEED=${seed})`,
    next,
    floats: (count, lo = -1, hi = 1) => Float32Array.from({ length: count }, () => lo + (hi - lo) * next()),
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo)),
    bytes: (count) => Uint8Array.from({ length: count }, () => Math.floor(next() * 256)),
  };
}
