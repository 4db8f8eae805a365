// Choosing the next token from logits on the host, as transformers' generate does: greedy at
// temperature 0 (the first maximum, as torch.argmax), otherwise logits / temperature, then
// top-k, then top-p (nucleus: the smallest set of most likely tokens whose probability
// reaches p, at least one kept), then a draw from a seeded generator, so a seed reproduces a
// sample exactly.

export interface SamplingOptions {
  /** 0 (the default) is greedy. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens (0 or absent: all). */
  readonly topK?: number;
  /** Keep the most likely tokens whose probabilities sum to p (1 or absent: all). */
  readonly topP?: number;
}

/** A small seeded generator (mulberry32): uniform floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** The next token id for `logits [vocab]`. */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, random: () => number): number {
  const temperature = opts.temperature ?? 0;
  if (temperature === 0) return argmax(logits);
  // candidates most likely first; ties keep the lower id first, as a stable sort does
  let order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (opts.topK && opts.topK > 0) order = order.slice(0, opts.topK);
  const top = logits[order[0]!]!;
  let probs = order.map((i) => Math.exp((logits[i]! - top) / temperature));
  const total = probs.reduce((s, p) => s + p, 0);
  probs = probs.map((p) => p / total);
  if (opts.topP !== undefined && opts.topP < 1) {
    let sum = 0;
    let keep = 0;
    while (keep < probs.length && (keep === 0 || sum < opts.topP)) sum += probs[keep++]!;
    order = order.slice(0, keep);
    probs = probs.slice(0, keep).map((p) => p / sum);
  }
  let u = random();
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i]!;
    if (u < 0) return order[i]!;
  }
  return order[order.length - 1]!;
}

/** Checks sampling options, naming the bad one. */
export function checkSampling(opts: SamplingOptions): string | undefined {
  if (opts.temperature !== undefined && !(opts.temperature >= 0)) return `temperature must be ≥ 0, found ${opts.temperature}`;
  if (opts.topK !== undefined && !(Number.isInteger(opts.topK) && opts.topK >= 0)) return `top-k must be a whole number ≥ 0, found ${opts.topK}`;
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) return `top-p must be in (0, 1], found ${opts.topP}`;
  return undefined;
}
