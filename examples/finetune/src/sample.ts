// Text generation that does not care how logits are computed: the interpreter, a compiled
// forward on the GPU, or a table in a test all fit behind one function. Greedy, temperature and
// top-k sampling; random draws come from the threefry stream of a seed, so a seed always gives
// the same text (for the same logits), whatever else the program drew before.
import { decode, encode, VOCAB } from "./data.js";
import { SamplingError } from "./errors.js";
import { RandomStream, type HostKey } from "./random.js";

/**
 * Logits for the token after `tokens`. The result may be the next token's `vocab` logits, or the
 * logits of every position ([seq, vocab] row-major, as a language model's forward returns them):
 * the LAST `vocab` values are used either way.
 */
export type LogitsFn = (tokens: Int32Array) => ArrayLike<number> | Promise<ArrayLike<number>>;

export interface SampleOptions {
  /** How many tokens to generate. */
  readonly maxTokens: number;
  /** Softmax temperature; 0 is greedy (always the most likely token). Default 1. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens before sampling; undefined keeps all. */
  readonly topK?: number;
  readonly seed?: number | HostKey;
  /** The model's context length: only the last `context` tokens are passed to `logits`. */
  readonly context?: number;
  /** Stop early after emitting this token (e.g. 10, a newline). */
  readonly stopToken?: number;
}

export interface Generation {
  /** The generated tokens only (not the prompt). */
  readonly tokens: Uint8Array;
  /** Their text, with invalid UTF-8 replaced by U+FFFD. */
  readonly text: string;
}

function checkOptions(temperature: number, topK: number | undefined, vocab: number): void {
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new SamplingError(`temperature must be a finite number ≥ 0 (0 = greedy), found ${temperature}`);
  }
  if (topK !== undefined && (!Number.isSafeInteger(topK) || topK < 1 || topK > vocab)) {
    throw new SamplingError(`topK must be an integer in [1, ${vocab}], found ${topK}`);
  }
}

/**
 * The token a draw `u` ∈ [0, 1) picks from `logits`: greedy (the first largest) when the
 * temperature is 0 or topK is 1; otherwise inverse-CDF sampling from softmax(logits / T) over
 * the `topK` largest logits (ties at the cut broken by lower index). −∞ logits are never picked;
 * NaN or +∞ is an error.
 */
export function chooseToken(logits: ArrayLike<number>, options: { temperature?: number; topK?: number }, u: number): number {
  const { temperature = 1, topK } = options;
  checkOptions(temperature, topK, logits.length);
  let best = -1;
  for (let i = 0; i < logits.length; i++) {
    const l = logits[i]!;
    if (Number.isNaN(l) || l === Infinity) throw new SamplingError(`logit ${i} is ${l}; expected finite numbers or −Infinity (masked)`);
    if (l !== -Infinity && (best < 0 || l > logits[best]!)) best = i;
  }
  if (best < 0) throw new SamplingError(`every one of the ${logits.length} logits is −Infinity: nothing can be sampled`);
  if (temperature === 0 || topK === 1) return best;
  const order = Array.from({ length: logits.length }, (_, i) => i).filter((i) => logits[i] !== -Infinity);
  order.sort((a, b) => logits[b]! - logits[a]! || a - b);
  const kept = topK === undefined ? order : order.slice(0, topK);
  const max = logits[kept[0]!]!;
  const weights = kept.map((i) => Math.exp((logits[i]! - max) / temperature));
  let total = 0;
  for (const w of weights) total += w;
  let target = u * total;
  for (let j = 0; j < kept.length; j++) {
    target -= weights[j]!;
    if (target < 0) return kept[j]!;
  }
  return kept[kept.length - 1]!; // u·total rounded up to total: the last kept token
}

/** Continues `prompt` by `maxTokens` tokens (fewer when `stopToken` comes up). */
export async function generate(logits: LogitsFn, prompt: string | Uint8Array, options: SampleOptions): Promise<Generation> {
  const { maxTokens, temperature = 1, topK, seed = 0, context, stopToken } = options;
  const vocab = VOCAB; // byte-level: tokens are bytes
  checkOptions(temperature, topK, vocab);
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 0) throw new SamplingError(`maxTokens must be a non-negative integer, found ${maxTokens}`);
  if (context !== undefined && (!Number.isSafeInteger(context) || context < 1)) throw new SamplingError(`context must be a positive integer, found ${context}`);
  const start = typeof prompt === "string" ? encode(prompt) : prompt;
  if (start.length === 0) throw new SamplingError("the prompt is empty: a language model needs at least one token to condition on");
  const tokens = new Int32Array(start.length + maxTokens);
  tokens.set(start);
  const rng = new RandomStream(seed);
  let n = start.length;
  while (n < tokens.length) {
    const input = tokens.subarray(context === undefined ? 0 : Math.max(0, n - context), n);
    const out = await logits(input.slice());
    if (out.length < vocab || out.length % vocab !== 0) {
      throw new SamplingError(`logits for ${input.length} tokens: expected a multiple of vocab = ${vocab} values, found ${out.length}`);
    }
    const last = Array.from({ length: vocab }, (_, i) => out[out.length - vocab + i]!);
    // one draw per token even when greedy, so the stream stays aligned across settings
    const token = chooseToken(last, { temperature, topK }, rng.uniform());
    tokens[n++] = token;
    if (token === stopToken) break;
  }
  const generated = Uint8Array.from(tokens.subarray(start.length, n));
  return { tokens: generated, text: decode(generated) };
}
