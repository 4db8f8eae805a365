// Text for training a language model: documents read from a file (.txt: one text; .jsonl: a
// "text" field per line), tokenized and packed into one stream with EOS between documents,
// split into training and validation (the validation split is the stream's tail, so no
// training window holds a validation token), and cut into windows. A training batch is a pure
// function of (seed, step), so a resumed run draws exactly the batches an uninterrupted one
// would; evaluation windows are consecutive and fixed, so every model is scored on the same
// tokens.
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { ModelError } from "./errors.js";
import { seededRandom } from "./sample.js";

/** Documents of a .txt (the whole file) or .jsonl (a "text" string per line) file. */
export async function readDocuments(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ModelError(`${path}: cannot read it: ${(error as Error).message}`);
  }
  if (text.trim() === "") throw new ModelError(`${path}: the file is empty`);
  if (extname(path).toLowerCase() !== ".jsonl") return [text];
  const docs: string[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (error) {
      throw new ModelError(`${path}:${i + 1}: not valid JSON: ${(error as Error).message}`);
    }
    const t = (row as { text?: unknown } | null)?.text;
    if (typeof t !== "string") throw new ModelError(`${path}:${i + 1}: expected an object with a "text" string, found ${line.length > 60 ? `${line.slice(0, 60)}…` : line}`);
    docs.push(t);
  });
  if (docs.length === 0) throw new ModelError(`${path}: no documents (every line is blank)`);
  return docs;
}

/** Token ids of the documents in order, `eos` after each (when given). */
export function packDocuments(docs: readonly string[], encode: (text: string) => number[], eos?: number): Int32Array {
  const parts = docs.map((d) => encode(d));
  const total = parts.reduce((n, p) => n + p.length + (eos === undefined ? 0 : 1), 0);
  const out = new Int32Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
    if (eos !== undefined) out[at++] = eos;
  }
  return out;
}

/** The stream's head for training and its last `fraction` for validation. */
export function splitTokens(tokens: Int32Array, fraction: number, where: string): { train: Int32Array; validation: Int32Array } {
  if (!(fraction > 0 && fraction < 1)) throw new ModelError(`${where}: the validation fraction must be in (0, 1), found ${fraction}`);
  const cut = tokens.length - Math.round(tokens.length * fraction);
  return { train: tokens.subarray(0, cut), validation: tokens.subarray(cut) };
}

/** `[batch, seq]` inputs and the tokens after them. */
export interface Windows {
  readonly ids: { shape: [number, number]; data: Int32Array };
  readonly targets: { shape: [number, number]; data: Int32Array };
}

function windowsAt(tokens: Int32Array, starts: readonly number[], seq: number): Windows {
  const ids = new Int32Array(starts.length * seq);
  const targets = new Int32Array(starts.length * seq);
  starts.forEach((s, b) => {
    ids.set(tokens.subarray(s, s + seq), b * seq);
    targets.set(tokens.subarray(s + 1, s + seq + 1), b * seq);
  });
  return { ids: { shape: [starts.length, seq], data: ids }, targets: { shape: [starts.length, seq], data: targets } };
}

/** Checks that `tokens` hold one window of `seq` tokens and its next token. */
export function checkWindows(tokens: Int32Array, seq: number, what: string): void {
  if (tokens.length < seq + 1) throw new ModelError(`${what} has ${tokens.length} tokens, shorter than one sequence of --seq ${seq} (plus the token after it)`);
}

/** Training batch number `step`: rows start at positions drawn from (seed, step) alone. */
export function trainingBatch(tokens: Int32Array, opts: { batch: number; seq: number; seed: number; step: number }): Windows {
  const random = seededRandom(Math.imul(opts.seed + 1, 0x9e3779b1) ^ Math.imul(opts.step + 1, 0x85ebca77));
  const positions = tokens.length - opts.seq;
  return windowsAt(tokens, Array.from({ length: opts.batch }, () => Math.floor(random() * positions)), opts.seq);
}

/** Consecutive non-overlapping windows from the start, `batch` a time (the last batch padded by repeating windows is never made: it is dropped), at most `maxBatches`. */
export function evaluationBatches(tokens: Int32Array, opts: { batch: number; seq: number; maxBatches?: number }): Windows[] {
  const count = Math.floor((tokens.length - 1) / opts.seq);
  const out: Windows[] = [];
  for (let w = 0; w + opts.batch <= count && out.length < (opts.maxBatches ?? Infinity); w += opts.batch) {
    out.push(windowsAt(tokens, Array.from({ length: opts.batch }, (_, b) => (w + b) * opts.seq), opts.seq));
  }
  return out;
}
