// threefry2x32 against the published known-answer vectors and an independent BigInt model,
// and the randomBits primitive against its definition.
import { describe, expect, it } from "vitest";
import { GraphBuilder, interpret, threefry2x32, randomBitsReference } from "@dorafuse/core";
import { expectEqual } from "./support/numeric.js";
import { withSeed } from "./support/random.js";

// Random123 kat_vectors, threefry2x32_20 (also JAX's tests of its threefry implementation).
const KAT: [number[], number[], number[]][] = [
  [[0x00000000, 0x00000000], [0x00000000, 0x00000000], [0x6b200159, 0x99ba4efe]],
  [[0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x1cb996fc, 0xbb002be7]],
  [[0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3], [0xc4923a9c, 0x483df7a0]],
];

/** Threefry-2x32-20 with BigInt words: a second, independent transcription of the algorithm. */
function threefryBig(key: [number, number], ctr: [number, number]): [number, number] {
  const M = (1n << 32n) - 1n;
  const rot = (x: bigint, r: number) => ((x << BigInt(r)) | (x >> BigInt(32 - r))) & M;
  const k = [BigInt(key[0]), BigInt(key[1])];
  const ks = [k[0]!, k[1]!, k[0]! ^ k[1]! ^ 0x1bd11bdan];
  let x = [(BigInt(ctr[0]) + ks[0]!) & M, (BigInt(ctr[1]) + ks[1]!) & M];
  const R = [
    [13, 15, 26, 6],
    [17, 29, 16, 24],
  ];
  for (let s = 1; s <= 5; s++) {
    for (const r of R[(s - 1) % 2]!) {
      const x0 = (x[0]! + x[1]!) & M;
      x = [x0, rot(x[1]!, r) ^ x0];
    }
    x = [(x[0]! + ks[s % 3]!) & M, (x[1]! + ks[(s + 1) % 3]! + BigInt(s)) & M];
  }
  return [Number(x[0]), Number(x[1])];
}

describe("threefry2x32", () => {
  it("reproduces the Random123 known-answer vectors", () => {
    for (const [key, ctr, want] of KAT) expect(threefry2x32(key[0]!, key[1]!, ctr[0]!, ctr[1]!)).toEqual(want);
  });

  it("agrees with an independent BigInt transcription on random keys and counters", () =>
    withSeed((rng) => {
      const u32 = () => Math.floor(rng.next() * 2 ** 32);
      for (let i = 0; i < 200; i++) {
        const key: [number, number] = [u32(), u32()];
        const ctr: [number, number] = [u32(), u32()];
        expect(threefry2x32(key[0], key[1], ctr[0], ctr[1]), `key ${key} ctr ${ctr}`).toEqual(threefryBig(key, ctr));
      }
    }));
});

describe("randomBits", () => {
  it("element i is word 0 of threefry2x32(key, (i, 0)), in any shape", () =>
    withSeed((rng) => {
      const key = [Math.floor(rng.next() * 2 ** 32), Math.floor(rng.next() * 2 ** 32)];
      const b = new GraphBuilder();
      const k = b.input("key", [2], "u32");
      const bits = b.emit("randomBits", [k], { shape: [3, 5, 2] });
      const [out] = interpret(b.build([bits]), [key]);
      expectEqual(out!, Array.from({ length: 30 }, (_, i) => threefryBig(key as [number, number], [i, 0])[0]));
      expectEqual(randomBitsReference(key[0]!, key[1]!, 30), out!);
    }));

  it("gives different streams for different keys and uniform-looking bits", () => {
    const n = 20000;
    const a = randomBitsReference(1, 2, n);
    const c = randomBitsReference(1, 3, n);
    expect(a.some((v, i) => v !== c[i])).toBe(true);
    // the mean of n uniform u32/2^32 has sd 1/sqrt(12n) ≈ 0.002; 6 sd is a 1e-9 false alarm
    const mean = a.reduce((s, v) => s + v / 2 ** 32, 0) / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(6 / Math.sqrt(12 * n));
    // each bit set about half the time
    for (let bit = 0; bit < 32; bit++) {
      const ones = a.reduce((s, v) => s + ((v >>> bit) & 1), 0);
      expect(Math.abs(ones / n - 0.5), `bit ${bit}`).toBeLessThan(6 * 0.5 / Math.sqrt(n));
    }
  });
});

describe("threefry2x32 primitive", () => {
  it("applies the cipher to every counter pair under one key", () =>
    withSeed((rng) => {
      const u32 = () => Math.floor(rng.next() * 2 ** 32);
      const key: [number, number] = [u32(), u32()];
      const ctr = Array.from({ length: 3 * 4 * 2 }, u32);
      const b = new GraphBuilder();
      const k = b.input("key", [2], "u32");
      const c = b.input("ctr", [3, 4, 2], "u32");
      const out = b.emit("threefry2x32", [k, c]);
      expect(out.shape).toEqual([3, 4, 2]);
      const [v] = interpret(b.build([out]), [key, ctr]);
      const ref = Array.from({ length: 12 }, (_, i) => threefryBig(key, [ctr[2 * i]!, ctr[2 * i + 1]!])).flat();
      expectEqual(v!, ref);
      expect(() => b.emit("threefry2x32", [k, b.input("bad", [3], "u32")])).toThrow(
        "threefry2x32: counters must be u32[..., 2], found u32[3]",
      );
    }));
});
