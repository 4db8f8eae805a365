// Sampling against a bigram "model" built in the test: deterministic per seed, different across
// seeds, greedy = the argmax chain, top-k never leaves the k most likely tokens, draws follow the
// tempered softmax, and bytes decode safely.
import { describe, expect, it } from "vitest";
import { randomKey } from "@dorafuse/core";
import { randomArray, withSeed, type Rng } from "../../../packages/core/test/support/random.js";
import { RandomStream, SamplingError, chooseToken, generate, hostKey, type LogitsFn } from "../src/index.js";

const V = 256;

/** Logits that depend on the previous token only: table[prev] (256 × 256), for every position. */
function bigram(rng: Rng, spread = 3): { table: Float64Array[]; logits: LogitsFn; calls: number[] } {
  const table = Array.from({ length: V }, () => randomArray(rng, V, { lo: -spread, hi: spread }));
  const calls: number[] = [];
  const logits: LogitsFn = (tokens) => {
    calls.push(tokens.length);
    const out = new Float32Array(tokens.length * V); // every position's logits, as a model's forward gives them
    tokens.forEach((t, i) => out.set(table[t]!, i * V));
    return out;
  };
  return { table, logits, calls };
}

const topIndices = (row: ArrayLike<number>, k: number) =>
  new Set(
    Array.from(row, (v, i) => [v, i] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .slice(0, k)
      .map(([, i]) => i),
  );

describe("generate", () => {
  it("gives the same text for the same seed and different text for different seeds", () =>
    withSeed(async (rng) => {
      const { logits } = bigram(rng);
      const seed = rng.int(0, 1e9);
      const a = await generate(logits, "Call me", { maxTokens: 48, seed });
      const b = await generate(logits, "Call me", { maxTokens: 48, seed });
      const c = await generate(logits, "Call me", { maxTokens: 48, seed: seed + 1 });
      expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
      expect(a.text).toBe(b.text);
      expect(a.tokens.length).toBe(48);
      expect(Array.from(c.tokens)).not.toEqual(Array.from(a.tokens));
    }));

  it("greedy (temperature 0 or top-k 1) follows the argmax chain whatever the seed", () =>
    withSeed(async (rng) => {
      const { table, logits } = bigram(rng);
      const expected: number[] = [];
      let prev = "W".charCodeAt(0);
      for (let i = 0; i < 20; i++) {
        const row = table[prev]!;
        prev = row.indexOf(Math.max(...row)); // float64 table, float32 logits: the spread keeps the argmax apart
        expected.push(prev);
      }
      for (const opts of [{ temperature: 0, seed: 1 }, { temperature: 0, seed: 99 }, { topK: 1, seed: 5 }]) {
        expect(Array.from((await generate(logits, "W", { maxTokens: 20, ...opts })).tokens)).toEqual(expected);
      }
    }));

  it("with top-k never emits a token outside the k most likely after the previous one", () =>
    withSeed(async (rng) => {
      const { table, logits } = bigram(rng, 1); // a flat model, so the cut matters
      for (const k of [2, 5, 17]) {
        const out = await generate(logits, "x", { maxTokens: 200, topK: k, temperature: 1.5, seed: rng.int(0, 1e9) });
        let prev = "x".charCodeAt(0);
        for (const t of out.tokens) {
          expect(topIndices(Float32Array.from(table[prev]!), k).has(t)).toBe(true);
          prev = t;
        }
        expect(new Set(out.tokens).size).toBeGreaterThan(k); // it really sampled, not greedy
      }
    }));

  it("passes at most `context` tokens and stops after the stop token", () =>
    withSeed(async (rng) => {
      const { logits, calls } = bigram(rng);
      await generate(logits, "a longer prompt", { maxTokens: 30, context: 8, seed: 3 });
      expect(Math.max(...calls)).toBe(8);
      // a model that always says "\n" stops after one token
      const newline: LogitsFn = () => Float32Array.from({ length: V }, (_, i) => (i === 10 ? 5 : 0));
      const out = await generate(newline, "hi", { maxTokens: 10, temperature: 0, stopToken: 10 });
      expect(out.text).toBe("\n");
    }));

  it("decodes invalid UTF-8 to U+FFFD instead of throwing", async () => {
    const bytes = [0xe2, 0x80, 0x94, 0xff, 0x41, 0xe2]; // an em dash, a stray 0xFF, "A", a cut-off sequence
    // after the one-byte prompt, the i-th call sees 1 + i tokens and forces bytes[i]
    const scripted: LogitsFn = async (tokens) => Float32Array.from({ length: V }, (_, t) => (t === bytes[tokens.length - 1] ? 1 : -Infinity));
    const out = await generate(scripted, "s", { maxTokens: bytes.length, seed: 1 });
    expect(Array.from(out.tokens)).toEqual(bytes);
    expect(out.text).toBe("—\uFFFDA\uFFFD");
  });

  it("rejects bad options and logits, saying what was expected", async () => {
    const flat: LogitsFn = () => new Float32Array(V);
    await expect(generate(flat, "a", { maxTokens: 1, temperature: -1 })).rejects.toThrow(/temperature must be a finite number ≥ 0/);
    await expect(generate(flat, "a", { maxTokens: 1, topK: 0 })).rejects.toThrow(/topK must be an integer in \[1, 256\], found 0/);
    await expect(generate(flat, "", { maxTokens: 1 })).rejects.toThrow(/the prompt is empty/);
    await expect(generate(() => new Float32Array(100), "a", { maxTokens: 1 })).rejects.toThrow(/expected a multiple of vocab = 256 values, found 100/);
    expect(() => chooseToken([0, NaN, 1], {}, 0.5)).toThrow(SamplingError);
    expect(() => chooseToken([-Infinity, -Infinity], {}, 0.5)).toThrow(/nothing can be sampled/);
  });
});

describe("chooseToken", () => {
  it("maps evenly spaced draws onto the tempered softmax, over the top k only", () =>
    withSeed((rng) => {
      const logits = randomArray(rng, 12, { lo: -2, hi: 2 });
      for (const [temperature, k] of [[1, undefined], [0.5, undefined], [2, 4]] as const) {
        const keep = topIndices(logits, k ?? 12);
        const w = Array.from(logits, (l, i) => (keep.has(i) ? Math.exp(l / temperature) : 0));
        const total = w.reduce((a, b) => a + b, 0);
        const n = 20_000;
        const counts = new Array<number>(12).fill(0);
        for (let j = 0; j < n; j++) counts[chooseToken(logits, { temperature, topK: k }, (j + 0.5) / n)]!++;
        // inverse-CDF on a uniform grid: each token's share is exact up to one grid step
        counts.forEach((c, i) => expect(Math.abs(c / n - w[i]! / total)).toBeLessThanOrEqual(1 / n + 1e-12));
      }
    }));

  it("never picks −∞ (masked) logits and breaks ties at the top-k cut by lower index", () => {
    for (let j = 0; j < 100; j++) expect(chooseToken([-Infinity, 0, -Infinity, 0], {}, j / 100)).toBeOneOf([1, 3]);
    for (let j = 0; j < 100; j++) expect(chooseToken([1, 3, 3, 3, 0], { topK: 2 }, j / 100)).toBeOneOf([1, 2]);
    expect(chooseToken([1, 3, 3], { temperature: 0 }, 0.99)).toBe(1);
  });
});

describe("RandomStream", () => {
  it("uses core's key layout and gives the same uniform draws in [0, 1) for the same seed", () => {
    for (const seed of [0, 7, 2 ** 40 + 3]) expect([...hostKey(seed)]).toEqual(Array.from(randomKey(seed).data));
    const a = new RandomStream(11);
    const b = new RandomStream(11);
    const xs = Array.from({ length: 1000 }, () => a.uniform());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.uniform()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / xs.length - 0.5)).toBeLessThan(0.05);
    expect(new RandomStream(11, 1).uniform()).not.toBe(xs[0]);
  });
});
