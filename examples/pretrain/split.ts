// The State of the Union split the shipped base is trained and scored on: the addresses in
// order, the last 10% of the bytes (whole addresses) held out; and the fixed held-out slice
// its model card reports, which the tests score again.
import { evaluationBatches, packDocuments, type Tokenizer, type Windows } from "@dorafuse/models";
import { loadSotu } from "../finetune/src/data.js";

/** The first 8 batches of 4 consecutive windows of 256 held-out tokens: 8192 tokens. */
export const SLICE = { batch: 4, seq: 256, maxBatches: 8 } as const;

export function sotuSplit(): { trainDocs: string[]; validDocs: string[] } {
  const docs = loadSotu().documents.map((d) => d.text);
  const totalBytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
  let seen = 0;
  const cut = docs.findIndex((d) => (seen += Buffer.byteLength(d)) > 0.9 * totalBytes) + 1;
  return { trainDocs: docs.slice(0, cut), validDocs: docs.slice(cut) };
}

/** The held-out addresses as one token stream, EOS after each (as the training stream is packed). */
export function heldOutTokens(tokenizer: Tokenizer): Int32Array {
  const eos = tokenizer.tokenId("<|endoftext|>")!;
  return packDocuments(sotuSplit().validDocs, (t) => tokenizer.encode(t), eos);
}

export const sliceBatches = (valid: Int32Array): Windows[] => evaluationBatches(valid, SLICE);
