// Every primitive's VJP rule against central finite differences in float64, on random inputs
// and random shapes (size-1 dims, broadcasts, several reduction axes, batch dims).
import { describe, expect, it } from "vitest";
import { interpret, vjpGraph, type GraphBuilder, type Node } from "@dorafuse/core";
import { checkVjp, makeGraph } from "./support/graph.js";
import { size } from "./support/numeric.js";
import { randomArray, randomInts, randomShape, withSeed, type Rng } from "./support/random.js";

type Range = { lo?: number; hi?: number; minAbs?: number };

const unaryRanges: Record<string, Range> = {
  neg: {},
  exp: { lo: -2, hi: 2 },
  log: { lo: 0.2, hi: 4 },
  sin: { lo: -3, hi: 3 },
  cos: { lo: -3, hi: 3 },
  tanh: { lo: -2, hi: 2 },
  sqrt: { lo: 0.2, hi: 4 },
  rsqrt: { lo: 0.2, hi: 4 },
  abs: { minAbs: 0.05 },
  recip: { minAbs: 0.2 },
  erf: { lo: -2, hi: 2 },
  // zero almost everywhere: stay away from the jumps so finite differences see zero too
  floor: { lo: 0.1, hi: 0.9 },
  ceil: { lo: 0.1, hi: 0.9 },
  sign: { minAbs: 0.1 },
};

const binaryRanges: Record<string, Range> = {
  add: {},
  sub: {},
  mul: {},
  div: { minAbs: 0.3 },
  pow: { lo: 0.3, hi: 2 },
  max: {},
  min: {},
};

function shrink(rng: Rng, shape: number[]): number[] {
  const drop = rng.int(0, shape.length);
  return shape.slice(drop).map((d) => (rng.next() < 0.4 ? 1 : d));
}

describe("VJP of elementwise primitives", () => {
  for (const [op, range] of Object.entries(unaryRanges)) {
    it(`${op} matches finite differences`, () =>
      withSeed((rng) => {
        const shape = randomShape(rng, rng.int(0, 3));
        const g = makeGraph([["x", shape]], (b, x) => b.emit(op, [x!]));
        checkVjp(g, [randomArray(rng, size(shape), range)], [0], rng);
      }));
  }

  for (const [op, range] of Object.entries(binaryRanges)) {
    it(`${op} of broadcast inputs matches finite differences`, () =>
      withSeed((rng) => {
        const shape = randomShape(rng, rng.int(1, 3));
        const sa = shrink(rng, shape);
        const sb = shrink(rng, shape);
        const g = makeGraph(
          [
            ["a", sa],
            ["b", sb],
          ],
          (b, x, y) => b.emit(op, [b.emit("broadcast", [x!], { shape }), b.emit("broadcast", [y!], { shape })]),
        );
        checkVjp(g, [randomArray(rng, size(sa), range), randomArray(rng, size(sb), range)], [0, 1], rng);
      }));
  }

  it("max and min split the gradient evenly on ties", () => {
    const g = makeGraph(
      [
        ["a", [3]],
        ["b", [3]],
      ],
      (b, x, y) => [b.emit("max", [x!, y!]), b.emit("min", [x!, y!])],
    );
    const [, , ga, gb] = interpret(vjpGraph(g, [0, 1]), [[1, 2, 3], [1, 5, 0], [1, 1, 1], [10, 10, 10]]);
    expect([...ga!]).toEqual([5.5, 10, 1]);
    expect([...gb!]).toEqual([5.5, 1, 10]);
  });

  it("where routes the gradient by the condition; cast between floats passes it through", () =>
    withSeed((rng) => {
      const shape = randomShape(rng, 2);
      const g = makeGraph(
        [
          ["c", shape, "bool"],
          ["a", shape],
          ["b", shape, "f16"],
        ],
        (b, c, x, y) => b.emit("where", [c!, b.emit("sin", [x!]), b.emit("cast", [b.emit("exp", [y!])], { dtype: "f32" })]),
      );
      const n = size(shape);
      checkVjp(g, [randomInts(rng, n, 0, 1), randomArray(rng, n), randomArray(rng, n)], [1, 2], rng);
    }));

  it("stopGradient and casts to integers pass no gradient", () =>
    withSeed((rng) => {
      const g = makeGraph([["x", [4]]], (b, x) => {
        const s = b.emit("stopGradient", [x!]);
        const asInt = b.emit("cast", [b.emit("cast", [x!], { dtype: "i32" })], { dtype: "f32" });
        return b.emit("add", [b.emit("mul", [x!, s]), asInt]);
      });
      const x = randomArray(rng, 4, { lo: 0.1, hi: 3 });
      const [, gx] = interpret(vjpGraph(g, [0]), [x, [1, 1, 1, 1]]);
      expect([...gx!]).toEqual([...x]); // d(x·sg(x))/dx = sg(x); the int round trip adds nothing
    }));
});

describe("VJP of reductions and matmul", () => {
  for (const op of ["reduceSum", "reduceMax"]) {
    it(`${op} over several axes matches finite differences`, () =>
      withSeed((rng) => {
        for (let trial = 0; trial < 4; trial++) {
          const shape = randomShape(rng, rng.int(1, 4));
          const axes = shape.map((_, i) => i).filter(() => rng.next() < 0.6);
          const g = makeGraph([["x", shape]], (b, x) => b.emit(op, [x!], { axes }));
          checkVjp(g, [randomArray(rng, size(shape))], [0], rng);
        }
      }));
  }

  it("reduceMax shares the gradient between tied maxima", () => {
    const g = makeGraph([["x", [2, 3]]], (b, x) => b.emit("reduceMax", [x!], { axes: [1] }));
    const [, gx] = interpret(vjpGraph(g, [0]), [[1, 4, 4, 2, 0, -1], [6, 3]]);
    expect([...gx!]).toEqual([0, 3, 3, 3, 0, 0]);
  });

  it("matmul with batch dims (and broadcast batch) matches finite differences", () =>
    withSeed((rng) => {
      for (let trial = 0; trial < 3; trial++) {
        const batch = randomShape(rng, rng.int(0, 2), 3);
        const [m, k, n] = [rng.int(1, 4), rng.int(1, 4), rng.int(1, 4)];
        const g = makeGraph(
          [
            ["a", [...batch, m, k]],
            ["w", [k, n]],
          ],
          (b, x, w) => b.emit("matmul", [x!, b.emit("broadcast", [w!], { shape: [...batch, k, n] })]),
        );
        checkVjp(g, [randomArray(rng, size(batch) * m * k), randomArray(rng, k * n)], [0, 1], rng);
      }
    }));
});

describe("VJP of layout, slicing and indexing", () => {
  const cases: [string, (rng: Rng) => { shape: number[]; fn: (b: GraphBuilder, x: Node) => Node }][] = [
    ["reshape", (rng) => ({ shape: [2, 3, rng.int(1, 3)], fn: (b, x) => b.emit("reshape", [x], { shape: [3, 2 * x.shape[2]!] }) })],
    [
      "transpose",
      (rng) => {
        const shape = randomShape(rng, 3);
        return { shape, fn: (b, x) => b.emit("transpose", [x], { perm: [2, 0, 1] }) };
      },
    ],
    [
      "broadcast",
      (rng) => {
        const shape = [1, rng.int(1, 3), 1];
        return { shape, fn: (b, x) => b.emit("broadcast", [x], { shape: [2, 3, shape[1]!, 4] }) };
      },
    ],
    [
      "slice",
      (rng) => {
        const shape = randomShape(rng, 3, 5);
        const start = shape.map((d) => rng.int(0, d - 1));
        const end = shape.map((d, i) => rng.int(start[i]! + 1, d));
        return { shape, fn: (b, x) => b.emit("slice", [x], { start, end }) };
      },
    ],
    [
      "pad",
      (rng) => {
        const shape = randomShape(rng, 2);
        return { shape, fn: (b, x) => b.emit("pad", [x], { low: [rng.int(0, 2), 1], high: [0, rng.int(0, 2)] }) };
      },
    ],
    [
      "concat",
      (rng) => {
        const shape = randomShape(rng, 2);
        return { shape, fn: (b, x) => b.emit("concat", [x, b.emit("sin", [x]), x], { axis: rng.int(0, 1) }) };
      },
    ],
  ];
  for (const [op, make] of cases) {
    it(`${op} matches finite differences`, () =>
      withSeed((rng) => {
        const { shape, fn } = make(rng);
        const g = makeGraph([["x", shape]], (b, x) => fn(b, x!));
        checkVjp(g, [randomArray(rng, size(shape))], [0], rng);
      }));
  }

  it("gather (with repeated indices) matches finite differences wrt the table", () =>
    withSeed((rng) => {
      const shape = randomShape(rng, 3, 4);
      const axis = rng.int(0, 2);
      const idxShape = [rng.int(1, 6)];
      const g = makeGraph(
        [
          ["x", shape],
          ["i", idxShape, "i32"],
        ],
        (b, x, i) => b.emit("gather", [x!, i!], { axis }),
      );
      checkVjp(g, [randomArray(rng, size(shape)), randomInts(rng, idxShape[0]!, 0, shape[axis]! - 1)], [0], rng);
    }));

  it("scatterAdd matches finite differences wrt the updates", () =>
    withSeed((rng) => {
      const shape = randomShape(rng, 2, 4);
      const axis = rng.int(0, 1);
      const idxShape = [rng.int(1, 3), 2];
      const upd = [...shape.slice(0, axis), ...idxShape, ...shape.slice(axis + 1)];
      const g = makeGraph(
        [
          ["i", idxShape, "i32"],
          ["u", upd],
        ],
        (b, i, u) => b.emit("scatterAdd", [i!, u!], { axis, shape }),
      );
      checkVjp(g, [randomInts(rng, size(idxShape), 0, shape[axis]! - 1), randomArray(rng, size(upd))], [1], rng);
    }));
});
