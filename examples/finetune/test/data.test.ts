// The corpora load from their packages, split by the documented rule (tail held out, on a
// character boundary, no overlap), and batches are shifted windows drawn inside one split.
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { withSeed } from "../../../packages/core/test/support/random.js";
import {
  BatchSampler,
  DataError,
  bitsPerByte,
  corpusBytes,
  decode,
  encode,
  evaluationBatches,
  loadMobyDick,
  loadSotu,
  perplexity,
  splitBytes,
  splitCorpus,
  type Batch,
} from "../src/index.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Every row of `batch` is tokens[start .. start+seq) with targets one further on. */
function expectShiftedWindows(batch: Batch, tokens: Uint8Array): void {
  expect(batch.inputs.length).toBe(batch.batch * batch.seq);
  expect(batch.targets.length).toBe(batch.batch * batch.seq);
  batch.starts.forEach((s, b) => {
    expect(s + batch.seq + 1).toBeLessThanOrEqual(tokens.length);
    const row = (a: Int32Array) => Array.from(a.subarray(b * batch.seq, (b + 1) * batch.seq));
    expect(row(batch.inputs)).toEqual(Array.from(tokens.subarray(s, s + batch.seq)));
    expect(row(batch.targets)).toEqual(Array.from(tokens.subarray(s + 1, s + batch.seq + 1)));
    for (let t = 0; t + 1 < batch.seq; t++) expect(batch.targets[b * batch.seq + t]).toBe(batch.inputs[b * batch.seq + t + 1]);
  });
}

describe("corpora", () => {
  const sotu = loadSotu();
  const moby = loadMobyDick();

  it("load both datasets from their packages, non-empty and in the documented order", () => {
    expect(sotu.documents.length).toBeGreaterThan(200);
    expect(moby.documents.length).toBeGreaterThan(130);
    for (const d of [...sotu.documents, ...moby.documents]) expect(d.text.length).toBeGreaterThan(0);
    const years = sotu.documents.map((d) => Number(d.title.slice(0, 4)));
    expect(years).toEqual([...years].sort((a, b) => a - b));
    expect(sotu.documents[0]!.title).toMatch(/^1790 George Washington/);
    expect(moby.documents.find((d) => d.text.startsWith("Call me Ishmael."))).toBeDefined();
    // the contents page comes first and the epilogue last, as in the book
    expect(moby.documents[0]!.text).toMatch(/^CONTENTS/);
    expect(moby.documents[moby.documents.length - 1]!.title).toMatch(/^Epilogue/);
  });

  it("encode the joined documents as UTF-8 bytes that decode back to the same text", () => {
    for (const corpus of [sotu, moby]) {
      const bytes = corpusBytes(corpus);
      const text = corpus.documents.map((d) => d.text).join("\n\n");
      expect(bytes.length).toBe(Buffer.byteLength(text, "utf8"));
      expect(decode(bytes)).toBe(text);
    }
    // real multi-byte characters (Melville's em dashes) are in the byte stream, as 0xE2 0x80 0x94
    const moby8 = corpusBytes(moby);
    expect(moby8.some((b) => b > 127)).toBe(true);
    expect(Array.from(encode("—"))).toEqual([0xe2, 0x80, 0x94]);
  });

  it("split each corpus the same way every time: train is the head, validation the last 10%", () => {
    for (const load of [loadSotu, loadMobyDick]) {
      const a = splitCorpus(load());
      const b = splitCorpus(load());
      expect(sha(a.train)).toBe(sha(b.train));
      expect(sha(a.validation)).toBe(sha(b.validation));
      const all = corpusBytes(load());
      expect(a.train.length + a.validation.length).toBe(all.length);
      expect(sha(a.train)).toBe(sha(all.subarray(0, a.train.length)));
      expect(sha(a.validation)).toBe(sha(all.subarray(a.train.length)));
      expect(Math.abs(a.validation.length - 0.1 * all.length)).toBeLessThan(4);
      expect(a.validation[0]! & 0xc0).not.toBe(0x80); // starts on a character, not inside one
    }
  });
});

describe("splitBytes", () => {
  it("moves the cut past the continuation bytes of a character instead of splitting it", () => {
    // a b E2 80 94 c d: a cut at byte 3 (inside the dash) moves to byte 5
    const bytes = encode("ab—cd");
    const inside = splitBytes(bytes, 4 / 7);
    expect([decode(inside.train), decode(inside.validation)]).toEqual(["ab—", "cd"]);
    // a cut on the dash's first byte is a boundary already
    const before = splitBytes(bytes, 5 / 7);
    expect([decode(before.train), decode(before.validation)]).toEqual(["ab", "—cd"]);
  });

  it("rejects fractions outside (0, 1) and streams too short for two splits", () => {
    expect(() => splitBytes(encode("hello"), 0)).toThrow(DataError);
    expect(() => splitBytes(encode("hello"), 1.5)).toThrow(/validationFraction must be in \(0, 1\), found 1.5/);
    expect(() => splitBytes(encode("a—"), 0.5)).toThrow(/4 bytes cannot give both splits/); // the cut can only move to the end
  });
});

describe("BatchSampler", () => {
  const { train, validation } = splitCorpus(loadMobyDick());

  it("gives [batch, seq] windows whose targets are the inputs shifted by one, inside the split", () =>
    withSeed((rng) => {
      const sampler = new BatchSampler(train, { batch: 8, seq: 64, seed: rng.int(0, 1e9) });
      for (let i = 0; i < 5; i++) {
        const b = sampler.next();
        expect([b.batch, b.seq]).toEqual([8, 64]);
        expectShiftedWindows(b, train);
        for (const v of [...b.inputs, ...b.targets]) expect(v >= 0 && v <= 255).toBe(true);
      }
    }));

  it("is deterministic per seed and batch index, and differs between seeds", () =>
    withSeed((rng) => {
      const seed = rng.int(0, 1e9);
      const a = new BatchSampler(train, { batch: 4, seq: 32, seed });
      const b = new BatchSampler(train, { batch: 4, seq: 32, seed });
      const drawn = [a.next(), a.next(), a.next()];
      expect(drawn.map((x) => x.starts)).toEqual([0, 1, 2].map((i) => b.batchAt(i).starts));
      expect(Array.from(drawn[2]!.inputs)).toEqual(Array.from(b.batchAt(2).inputs));
      // a resumed sampler continues where the first left off
      const resumed = new BatchSampler(train, { batch: 4, seq: 32, seed, step: 3 });
      expect(resumed.next().starts).toEqual(a.next().starts);
      expect(new BatchSampler(train, { batch: 4, seq: 32, seed: seed + 1 }).batchAt(0).starts).not.toEqual(b.batchAt(0).starts);
    }));

  it("draws starts over the whole range, including both ends", () => {
    // 20 tokens, seq 4: starts 0..15 are the 16 windows that fit
    const tokens = Uint8Array.from({ length: 20 }, (_, i) => i);
    const starts = new BatchSampler(tokens, { batch: 50, seq: 4, seed: 7 }).batchAt(0).starts;
    const more = Array.from({ length: 20 }, (_, i) => new BatchSampler(tokens, { batch: 50, seq: 4, seed: 7 }).batchAt(i + 1).starts).flat();
    const seen = new Set([...starts, ...more]);
    expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });

  it("rejects windows longer than the split and non-integer sizes", () => {
    expect(() => new BatchSampler(encode("short"), { batch: 1, seq: 5, seed: 0 })).toThrow(/needs seq \+ 1 = 6 tokens, the split has 5/);
    expect(() => new BatchSampler(validation, { batch: 0, seq: 8, seed: 0 })).toThrow(/batch must be a positive integer, found 0/);
  });
});

describe("evaluationBatches", () => {
  it("covers the split with consecutive non-overlapping windows, the last batch smaller", () => {
    const tokens = Uint8Array.from({ length: 103 }, (_, i) => (i * 37) % 256);
    const batches = evaluationBatches(tokens, { batch: 4, seq: 10 });
    // (103 - 1) / 10 → 10 windows: 4 + 4 + 2
    expect(batches.map((b) => b.batch)).toEqual([4, 4, 2]);
    expect(batches.flatMap((b) => b.starts)).toEqual(Array.from({ length: 10 }, (_, i) => i * 10));
    for (const b of batches) expectShiftedWindows(b, tokens);
    expect(evaluationBatches(tokens, { batch: 4, seq: 10, maxBatches: 2 }).length).toBe(2);
  });
});

describe("bitsPerByte", () => {
  it("converts nats to bits: a uniform guess over 256 bytes is 8 bits and perplexity 256", () => {
    expect(bitsPerByte(Math.log(256))).toBeCloseTo(8, 12);
    expect(perplexity(Math.log(256))).toBeCloseTo(256, 9);
    expect(bitsPerByte(1)).toBeCloseTo(1 / Math.log(2), 14);
  });
});
