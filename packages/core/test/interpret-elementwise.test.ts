// The interpreter's elementwise primitives against values computed here, independently, on
// random shapes (with size-1 dims) — including binary ops fed through broadcasts.
import { describe, expect, it } from "vitest";
import { interpret, type DType } from "@dorafuse/core";
import { makeGraph } from "./support/graph.js";
import { expectClose, expectEqual, ravel, size, unravel } from "./support/numeric.js";
import { randomArray, randomInts, randomShape, withSeed, type Rng } from "./support/random.js";

/** erf by composite Simpson integration of 2/√π e^{−t²} — a different method from the library's. */
function erfBySimpson(x: number): number {
  const n = 2000;
  const h = x / n;
  let s = 1 + Math.exp(-x * x);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  return ((2 / Math.sqrt(Math.PI)) * s * h) / 3;
}

const unaryRef: Record<string, [(x: number) => number, { lo?: number; hi?: number; minAbs?: number }]> = {
  neg: [(x) => -x, {}],
  exp: [Math.exp, { lo: -3, hi: 3 }],
  log: [Math.log, { lo: 0.01, hi: 5 }],
  sin: [Math.sin, { lo: -4, hi: 4 }],
  cos: [Math.cos, { lo: -4, hi: 4 }],
  tanh: [Math.tanh, { lo: -3, hi: 3 }],
  sqrt: [Math.sqrt, { lo: 0, hi: 9 }],
  rsqrt: [(x) => 1 / Math.sqrt(x), { lo: 0.01, hi: 9 }],
  abs: [Math.abs, {}],
  sign: [(x) => (x > 0 ? 1 : x < 0 ? -1 : 0), {}],
  recip: [(x) => 1 / x, { minAbs: 0.05 }],
  floor: [Math.floor, { lo: -5, hi: 5 }],
  ceil: [Math.ceil, { lo: -5, hi: 5 }],
  erf: [erfBySimpson, { lo: -3, hi: 3 }],
};

const binaryRef: Record<string, [(x: number, y: number) => number, { lo?: number; hi?: number; minAbs?: number }]> = {
  add: [(x, y) => x + y, {}],
  sub: [(x, y) => x - y, {}],
  mul: [(x, y) => x * y, {}],
  div: [(x, y) => x / y, { minAbs: 0.1 }],
  pow: [(x, y) => x ** y, { lo: 0.1, hi: 3 }],
  max: [(x, y) => (x > y ? x : y), {}],
  min: [(x, y) => (x < y ? x : y), {}],
};

/** `shape` with some leading axes dropped and some dims set to 1. */
function shrink(rng: Rng, shape: number[]): number[] {
  const drop = rng.int(0, shape.length);
  return shape.slice(drop).map((d) => (rng.next() < 0.4 ? 1 : d));
}

/** Naive numpy broadcasting: the element of `x` (shape `from`) seen at position `idx` of `to`. */
function at(x: Float64Array, from: number[], to: number[], idx: number[]): number {
  const tail = idx.slice(to.length - from.length).map((v, i) => (from[i] === 1 ? 0 : v));
  return x[ravel(tail, from)]!;
}

describe("unary elementwise primitives", () => {
  for (const [op, [f, range]] of Object.entries(unaryRef)) {
    it(`${op} matches Math on random f32 inputs`, () =>
      withSeed((rng) => {
        const shape = randomShape(rng, rng.int(0, 3));
        const x = randomArray(rng, size(shape), range);
        const [out] = interpret(makeGraph([["x", shape]], (b, xn) => b.emit(op, [xn!])), [x]);
        expectClose(out!, x.map(f), op === "erf" ? 1e-12 : 1e-15, op);
      }));
  }

  it("neg, abs and sign of i32 wrap like the GPU (neg of -2^31 is -2^31)", () => {
    const x = Float64Array.from([-2147483648, -5, 0, 7, 2147483647]);
    const g = makeGraph([["x", [5], "i32"]], (b, xn) => ["neg", "abs", "sign"].map((op) => b.emit(op, [xn!])));
    const [neg, abs, sign] = interpret(g, [x]);
    expectEqual(neg!, [-2147483648, 5, 0, -7, -2147483647]);
    expectEqual(abs!, [-2147483648, 5, 0, 7, 2147483647]);
    expectEqual(sign!, [-1, -1, 0, 1, 1]);
  });
});

describe("binary elementwise primitives", () => {
  for (const [op, [f, range]] of Object.entries(binaryRef)) {
    it(`${op} over broadcast inputs matches a naive broadcasting loop`, () =>
      withSeed((rng) => {
        const shape = randomShape(rng, rng.int(1, 4));
        const sa = shrink(rng, shape);
        const sb = shrink(rng, shape);
        const a = randomArray(rng, size(sa), range);
        const c = randomArray(rng, size(sb), range);
        const g = makeGraph(
          [
            ["a", sa],
            ["b", sb],
          ],
          (b, x, y) => b.emit(op, [b.emit("broadcast", [x!], { shape }), b.emit("broadcast", [y!], { shape })]),
        );
        const [out] = interpret(g, [a, c]);
        const ref = Float64Array.from({ length: size(shape) }, (_, i) => {
          const idx = unravel(i, shape);
          return f(at(a, sa, shape, idx), at(c, sb, shape, idx));
        });
        expectClose(out!, ref, 1e-15, op);
      }));
  }

  // BigInt arithmetic modulo 2^32 is an independent model of the GPU's integer wrapping.
  const wrap = (v: bigint, d: DType): number => Number(d === "i32" ? BigInt.asIntN(32, v) : BigInt.asUintN(32, v));
  const intRef: Record<string, (x: bigint, y: bigint) => bigint> = {
    add: (x, y) => x + y,
    sub: (x, y) => x - y,
    mul: (x, y) => x * y,
    max: (x, y) => (x > y ? x : y),
    min: (x, y) => (x < y ? x : y),
  };
  for (const dtype of ["i32", "u32"] as const) {
    it(`add sub mul max min of ${dtype} wrap modulo 2^32`, () =>
      withSeed((rng) => {
        const [lo, hi] = dtype === "i32" ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** 32 - 1];
        const n = 64;
        const a = randomInts(rng, n, lo, hi);
        const c = randomInts(rng, n, lo, hi);
        const ops = Object.keys(intRef);
        const g = makeGraph(
          [
            ["a", [n], dtype],
            ["b", [n], dtype],
          ],
          (b, x, y) => ops.map((op) => b.emit(op, [x!, y!])),
        );
        const outs = interpret(g, [a, c]);
        ops.forEach((op, k) => {
          const ref = Array.from(a, (x, i) => wrap(intRef[op]!(BigInt(x), BigInt(c[i]!)), dtype));
          expectEqual(outs[k]!, ref, `${dtype} ${op}`);
        });
      }));
  }

  it("integer division truncates toward zero, and x / 0 = x as in WGSL", () => {
    const g = makeGraph(
      [
        ["a", [6], "i32"],
        ["b", [6], "i32"],
      ],
      (b, x, y) => b.emit("div", [x!, y!]),
    );
    const [q] = interpret(g, [
      [7, -7, 7, -2147483648, 5, -9],
      [2, 2, 0, -1, -3, 4],
    ]);
    expectEqual(q!, [3, -3, 7, -2147483648, -1, -2]);
    const gu = makeGraph(
      [
        ["a", [3], "u32"],
        ["b", [3], "u32"],
      ],
      (b, x, y) => b.emit("div", [x!, y!]),
    );
    expectEqual(interpret(gu, [[4294967295, 9, 9], [2, 0, 4]])[0]!, [2147483647, 9, 2]);
  });
});

describe("comparisons, logic, where, cast, stopGradient", () => {
  it("compare ops give 0/1 and logic ops combine bools", () =>
    withSeed((rng) => {
      const shape = randomShape(rng, 2);
      const n = size(shape);
      // small integers so that ties (eq, le, ge) actually occur
      const a = randomInts(rng, n, -2, 2);
      const c = randomInts(rng, n, -2, 2);
      const cmp: Record<string, (x: number, y: number) => boolean> = {
        eq: (x, y) => x === y,
        ne: (x, y) => x !== y,
        lt: (x, y) => x < y,
        le: (x, y) => x <= y,
        gt: (x, y) => x > y,
        ge: (x, y) => x >= y,
      };
      const g = makeGraph(
        [
          ["a", shape],
          ["b", shape],
        ],
        (b, x, y) => {
          const cs = Object.keys(cmp).map((op) => b.emit(op, [x!, y!]));
          const [lt, , , gt] = [cs[2]!, 0, 0, cs[4]!];
          return [...cs, b.emit("and", [lt, b.emit("not", [gt])]), b.emit("or", [lt, gt])];
        },
      );
      const outs = interpret(g, [a, c]);
      Object.values(cmp).forEach((f, k) => expectEqual(outs[k]!, Array.from(a, (x, i) => (f(x, c[i]!) ? 1 : 0))));
      expectEqual(outs[6]!, Array.from(a, (x, i) => (x < c[i]! && !(x > c[i]!) ? 1 : 0)), "and/not");
      expectEqual(outs[7]!, Array.from(a, (x, i) => (x !== c[i]! ? 1 : 0)), "or");
    }));

  it("where selects elementwise", () =>
    withSeed((rng) => {
      const shape = randomShape(rng, 3);
      const n = size(shape);
      const cond = randomInts(rng, n, 0, 1);
      const a = randomArray(rng, n);
      const c = randomArray(rng, n);
      const g = makeGraph(
        [
          ["c", shape, "bool"],
          ["a", shape],
          ["b", shape],
        ],
        (b, k, x, y) => b.emit("where", [k!, x!, y!]),
      );
      expectEqual(interpret(g, [cond, a, c])[0]!, Array.from(cond, (k, i) => (k ? a[i]! : c[i]!)));
    }));

  it("cast follows WGSL conversions: truncate and saturate to ints, reinterpret i32↔u32, x≠0 to bool", () => {
    const x = [2.7, -2.7, 1e10, -1e10, NaN, 0, -0.5, 3e9];
    const g = makeGraph([["x", [8]]], (b, xn) => (["i32", "u32", "bool"] as const).map((d) => b.emit("cast", [xn!], { dtype: d })));
    const [i, u, bo] = interpret(g, [x]);
    expectEqual(i!, [2, -2, 2147483647, -2147483648, 0, 0, 0, 2147483647]);
    expectEqual(u!, [2, 0, 4294967295, 0, 0, 0, 0, 3000000000]);
    expectEqual(bo!, [1, 1, 1, 1, 1, 0, 1, 1]);
    const gi = makeGraph([["x", [3], "i32"]], (b, xn) => {
      const asU = b.emit("cast", [xn!], { dtype: "u32" });
      return [asU, b.emit("cast", [asU], { dtype: "i32" }), b.emit("cast", [xn!], { dtype: "f32" })];
    });
    const [uu, back, f] = interpret(gi, [[-1, 5, -2147483648]]);
    expectEqual(uu!, [4294967295, 5, 2147483648]);
    expectEqual(back!, [-1, 5, -2147483648]);
    expectEqual(f!, [-1, 5, -2147483648]);
  });

  it("stopGradient is the identity in value", () =>
    withSeed((rng) => {
      const x = randomArray(rng, 7);
      expectEqual(interpret(makeGraph([["x", [7]]], (b, xn) => b.emit("stopGradient", [xn!])), [x])[0]!, x);
    }));

  it("inputs of integer dtypes are wrapped and bools normalized on entry", () => {
    const g = makeGraph(
      [
        ["i", [2], "i32"],
        ["b", [2], "bool"],
      ],
      (b, i, k) => [b.emit("add", [i!, i!]), b.emit("not", [k!])],
    );
    const [s, n] = interpret(g, [
      [2 ** 31, 3],
      [5, 0],
    ]);
    expect([...s!]).toEqual([0, 6]);
    expect([...n!]).toEqual([0, 1]);
  });
});
