// Random numbers built on randomBits: exact agreement with the bits (so the GPU, which makes
// the same bits, gives the same numbers), their distributions, and functional key handling.
import { describe, expect, it } from "vitest";
import {
  HostTensor,
  bernoulli,
  dropout,
  evaluate,
  foldIn,
  keyFromSeed,
  normal,
  randomBits,
  randomBitsReference,
  randomKey,
  splitKey,
  uniform,
  type Key,
  type Tensor,
} from "@dorafuse/core";
import { expectClose, expectEqual } from "./support/numeric.js";
import { withSeed } from "./support/random.js";
import { checkGradients, randomHost } from "./support/frontend-check.js";

type W = Tensor<number[], "f32">;
const N = 20000;
const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: ArrayLike<number>) => {
  const m = mean(xs);
  return Array.from(xs).reduce((a, b) => a + (b - m) ** 2, 0) / xs.length;
};
const hostKey = (seed: number): HostTensor<[2], "u32"> => randomKey(seed);

describe("uniform, normal and bernoulli", () => {
  it("uniform is floor(bits / 2^8) · 2^-24 of the key's random bits", () =>
    withSeed((rng) => {
      const key = hostKey(rng.int(0, 2 ** 31));
      const u = evaluate((k) => uniform(k, [3, 50]), [key]);
      const bits = randomBitsReference(key.data[0]!, key.data[1]!, 150);
      expectEqual(u.data, Array.from(bits, (b) => Math.floor(b / 256) * 2 ** -24));
      const r = evaluate((k) => uniform(k, [3, 50], { low: -2, high: 6 }), [key]);
      expectClose(r.data, Array.from(u.data, (v) => -2 + 8 * v), 1e-15);
    }));

  it("uniform has the moments of U[0, 1) and stays below 1", () =>
    withSeed((rng) => {
      const u = evaluate((k) => uniform(k, [N]), [hostKey(rng.int(0, 2 ** 31))]).data;
      expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...u)).toBeLessThan(1);
      expect(Math.abs(mean(u) - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / N));
      expect(Math.abs(variance(u) - 1 / 12)).toBeLessThan(0.005);
    }));

  it("normal is Box–Muller on two halves of the bits, with mean 0 and variance 1", () =>
    withSeed((rng) => {
      const key = hostKey(rng.int(0, 2 ** 31));
      const z = evaluate((k) => normal(k, [N]), [key]).data;
      const bits = randomBitsReference(key.data[0]!, key.data[1]!, 2 * N);
      const ref = Array.from({ length: N }, (_, i) => {
        const u1 = (Math.floor(bits[i]! / 256) + 1) * 2 ** -24;
        const u2 = Math.floor(bits[N + i]! / 256) * 2 ** -24;
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      });
      expectClose(z, ref, 1e-12);
      expect(Math.abs(mean(z))).toBeLessThan(5 / Math.sqrt(N));
      expect(Math.abs(variance(z) - 1)).toBeLessThan(5 * Math.sqrt(2 / N));
      const s = evaluate((k) => normal(k, [N], { mean: 3, std: 0.5 }), [key]).data;
      expectClose(s, ref.map((v) => 3 + 0.5 * v), 1e-12);
    }));

  it("bernoulli is true with probability p", () =>
    withSeed((rng) => {
      const p = rng.uniform(0.1, 0.9);
      const b = evaluate((k) => bernoulli(k, p, [N]), [hostKey(rng.int(0, 2 ** 31))]);
      expect(b.dtype).toBe("bool");
      expect(Math.abs(mean(b.data) - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N));
    }));
});

describe("keys", () => {
  it("the same key gives the same numbers; keyFromSeed equals randomKey", () =>
    withSeed((rng) => {
      const seed = rng.int(0, 2 ** 40);
      const a = evaluate((k) => uniform(k, [8]), [hostKey(seed)]);
      const b = evaluate(() => uniform(keyFromSeed(seed), [8]), []);
      expectEqual(a.data, b.data);
      expectEqual(evaluate(() => keyFromSeed(seed), []).data, hostKey(seed).data);
    }));

  it("split keys differ from each other and from the parent, and their draws are uncorrelated", () =>
    withSeed((rng) => {
      const key = hostKey(rng.int(0, 2 ** 31));
      const out = evaluate((k) => {
        const [a, b, c] = splitKey(k, 3);
        return { keys: [a, b, c], ua: uniform(a, [N]), ub: uniform(b, [N]), u: uniform(k, [N]) };
      }, [key]);
      const words = [key, ...out.keys].map((k) => Array.from(k.data).join(","));
      expect(new Set(words).size).toBe(4);
      const corr = (x: ArrayLike<number>, y: ArrayLike<number>) => {
        const mx = mean(x);
        const my = mean(y);
        let s = 0;
        for (let i = 0; i < x.length; i++) s += (x[i]! - mx) * (y[i]! - my);
        return s / x.length / Math.sqrt(variance(x) * variance(y));
      };
      expect(Math.abs(corr(out.ua.data, out.ub.data))).toBeLessThan(5 / Math.sqrt(N));
      expect(Math.abs(corr(out.ua.data, out.u.data))).toBeLessThan(5 / Math.sqrt(N));
    }));

  it("foldIn gives a distinct key per datum, the same for a number and a traced scalar", () =>
    withSeed((rng) => {
      const key = hostKey(rng.int(0, 2 ** 31));
      const step = new HostTensor<[], "u32">([], Float64Array.of(7), "u32");
      const out = evaluate((k, s) => ({ f: [0, 1, 2, 7].map((d) => foldIn(k, d)), traced: foldIn(k, s), split: splitKey(k, 2) }), [key, step]);
      const words = [...out.f, ...out.split, key].map((k) => Array.from(k.data).join(","));
      expect(new Set(words).size).toBe(7);
      expectEqual(out.traced.data, out.f[3]!.data);
    }));

  it("raw bits are the engine's threefry bits", () =>
    withSeed((rng) => {
      const key = hostKey(rng.int(0, 2 ** 31));
      expectEqual(evaluate((k: Key) => randomBits(k, [4, 5]), [key]).data, randomBitsReference(key.data[0]!, key.data[1]!, 20));
    }));
});

describe("dropout", () => {
  it("zeroes a `rate` fraction and scales the survivors by 1 / (1 − rate)", () =>
    withSeed((rng) => {
      const rate = rng.uniform(0.1, 0.6);
      const x = randomHost(rng, [N], { lo: 0.5, hi: 1.5 });
      const y = evaluate((k, v) => dropout(k, v, rate), [hostKey(rng.int(0, 2 ** 31)), x]).data;
      const zeros = Array.from(y).filter((v) => v === 0).length / N;
      expect(Math.abs(zeros - rate)).toBeLessThan(5 * Math.sqrt((rate * (1 - rate)) / N));
      expectClose(y, Array.from(y, (v, i) => (v === 0 ? 0 : x.data[i]! / (1 - rate))), 1e-14, "survivors");
      expectEqual(evaluate((k, v) => dropout(k, v, 0), [hostKey(1), x]).data, x.data);
    }));

  it("its gradient is the same mask, scaled", () =>
    withSeed((rng) => {
      const key = hostKey(rng.int(0, 2 ** 31));
      checkGradients((k, v) => dropout(k as unknown as Key, v as W, 0.3), [key as unknown as HostTensor, randomHost(rng, [40])], rng);
    }));
});
