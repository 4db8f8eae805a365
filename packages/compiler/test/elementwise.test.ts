// Every elementwise primitive compiled to WGSL, with fusion and without, against the float64
// interpreter on fresh random inputs: sizes 1, 3, 17 and 129, unit and broadcast dimensions,
// integer and bool dtypes, and f16 (lavapipe has shader-f16).
import { describe, expect, it } from "vitest";
import type { DType, GraphBuilder, Node } from "@dorafuse/core";
import { makeGraph } from "../../core/test/support/graph.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectBothSchedules, randomInputs } from "./support/run.js";

const gpu = useDevice();
const SIZES = [1, 3, 17, 129];
const bc = (b: GraphBuilder, x: Node, shape: number[]) => b.emit("broadcast", [x], { shape });

const UNARY: [string, [number, number]][] = [
  ["neg", [-3, 3]], ["exp", [-3, 3]], ["log", [0.1, 4]], ["sin", [-3, 3]], ["cos", [-3, 3]], ["tanh", [-3, 3]],
  ["sqrt", [0.1, 4]], ["rsqrt", [0.1, 4]], ["abs", [-3, 3]], ["sign", [-3, 3]], ["recip", [0.2, 3]],
  ["floor", [-5, 5]], ["ceil", [-5, 5]], ["erf", [-3, 3]],
];

describe("unary float ops", () => {
  for (const [op, range] of UNARY) {
    it(`${op} matches the interpreter at sizes 1, 3, 17, 129 and over a broadcast row`, () =>
      withSeed(async (rng) => {
        for (const n of SIZES) {
          const g = makeGraph([["x", [n]], ["row", [1, n]]], (b, x, row) => [
            b.emit(op, [x]),
            // fused: the op over a broadcast [3, n] view of a unit-leading row
            b.emit("mul", [b.emit(op, [bc(b, row, [3, n])]), bc(b, b.emit("constant", [], { value: 2 }), [3, n])]),
          ]);
          await expectBothSchedules(gpu.device, g, randomInputs(rng, g, { x: range, row: range }), { target: gpu.target });
        }
      }));
  }
});

const BINARY: [string, [number, number], [number, number]][] = [
  ["add", [-3, 3], [-3, 3]], ["sub", [-3, 3], [-3, 3]], ["mul", [-3, 3], [-3, 3]], ["div", [-3, 3], [0.5, 3]],
  ["pow", [0.1, 3], [-2, 2]], ["max", [-3, 3], [-3, 3]], ["min", [-3, 3], [-3, 3]],
];

describe("binary float ops", () => {
  for (const [op, ra, rb] of BINARY) {
    it(`${op} matches the interpreter, with one operand broadcast along each axis`, () =>
      withSeed(async (rng) => {
        for (const n of SIZES) {
          const g = makeGraph([["a", [n, 3]], ["b", [n, 3]], ["col", [n, 1]], ["r", [3]]], (b, a, y, col, r) => [
            b.emit(op, [a, y]),
            b.emit(op, [bc(b, col, [n, 3]), bc(b, r, [n, 3])]),
          ]);
          await expectBothSchedules(gpu.device, g, randomInputs(rng, g, { a: ra, b: rb, col: ra, r: rb }), { target: gpu.target });
        }
      }));
  }
});

describe("integer ops", () => {
  for (const dtype of ["i32", "u32"] as DType[]) {
    for (const op of ["add", "sub", "mul", "div", "max", "min"]) {
      it(`${op} on ${dtype} wraps and divides as WGSL does`, () =>
        withSeed(async (rng) => {
          for (const n of [1, 17, 129]) {
            const g = makeGraph([["a", [n], dtype], ["b", [n], dtype]], (b, a, y) => b.emit(op, [a, y]));
            const xs = randomInputs(rng, g);
            if (op === "div") xs[1] = xs[1]!.map((v) => (v === 0 ? 3 : v));
            await expectBothSchedules(gpu.device, g, xs, { target: gpu.target });
          }
        }));
    }
  }
  for (const op of ["neg", "abs", "sign"]) {
    it(`${op} on i32 matches the interpreter`, () =>
      withSeed(async (rng) => {
        const g = makeGraph([["a", [17], "i32"]], (b, a) => b.emit(op, [a]));
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      }));
  }
});

describe("comparisons, logic and where", () => {
  for (const op of ["eq", "ne", "lt", "le", "gt", "ge"]) {
    it(`${op} gives bools stored as u32, on floats and on integers`, () =>
      withSeed(async (rng) => {
        for (const n of [1, 17, 129]) {
          const g = makeGraph([["a", [n]], ["b", [n]], ["i", [n], "i32"], ["j", [n], "i32"]], (b, a, y, i, j) => [b.emit(op, [a, y]), b.emit(op, [i, j])]);
          const xs = randomInputs(rng, g);
          // make some float pairs equal so eq/le/ge see ties
          xs[1] = xs[1]!.map((v, k) => (k % 3 === 0 ? xs[0]![k]! : v));
          await expectBothSchedules(gpu.device, g, xs, { target: gpu.target });
        }
      }));
  }
  it("and, or, not and where combine bool masks", () =>
    withSeed(async (rng) => {
      for (const n of SIZES) {
        const g = makeGraph([["p", [n], "bool"], ["q", [n], "bool"], ["x", [n]], ["y", [n]]], (b, p, q, x, y) => [
          b.emit("and", [p, q]),
          b.emit("or", [p, b.emit("not", [q])]),
          b.emit("where", [b.emit("and", [p, b.emit("gt", [x, y])]), x, y]),
        ]);
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      }
    }));
});

describe("casts", () => {
  const pairs: [DType, DType][] = [
    ["f32", "i32"], ["f32", "u32"], ["f32", "bool"], ["i32", "f32"], ["u32", "f32"], ["bool", "f32"], ["bool", "i32"],
    ["i32", "u32"], ["u32", "i32"], ["i32", "bool"], ["f32", "f16"], ["f16", "f32"], ["f16", "i32"],
  ];
  for (const [from, to] of pairs) {
    it(`cast ${from} → ${to} converts as WGSL does`, () =>
      withSeed(async (rng) => {
        const g = makeGraph([["x", [129], from]], (b, x) => b.emit("cast", [x], { dtype: to }));
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g, { x: [-40, 40] }), { target: gpu.target });
      }));
  }
});

describe("sources", () => {
  it("iota along each axis in i32, u32 and f32, and scalar constants as outputs", () =>
    withSeed(async (rng) => {
      for (const dtype of ["i32", "u32", "f32"] as DType[]) {
        const g = makeGraph([["x", [3, 17]]], (b, x) => [
          b.emit("iota", [], { shape: [3, 17], axis: 0, dtype }),
          b.emit("iota", [], { shape: [3, 17], axis: 1, dtype }),
          b.emit("add", [x, b.emit("cast", [b.emit("iota", [], { shape: [3, 17], axis: 1, dtype })], { dtype: "f32" })]),
          b.emit("constant", [], { value: 2.5 }),
          bc(b, b.emit("constant", [], { value: -7, dtype: "i32" }), [4]),
        ]);
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      }
    }));
  it("infinities and NaN constants survive (they have no WGSL literal)", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [17]]], (b, x) => [
        b.emit("max", [x, bc(b, b.emit("constant", [], { value: -Infinity }), [17])]),
        b.emit("min", [x, bc(b, b.emit("constant", [], { value: Infinity }), [17])]),
        b.emit("reduceMax", [x], { axes: [0] }),
      ]);
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
    }));
});

describe("f16", () => {
  it("the lavapipe adapter has shader-f16", () => {
    expect(gpu.device.features.has("shader-f16")).toBe(true);
    expect(gpu.target.f16).toBe(true);
  });
  it("an f16 elementwise chain with broadcasting matches the interpreter to half precision", () =>
    withSeed(async (rng) => {
      for (const n of SIZES) {
        const g = makeGraph([["x", [n, 3], "f16"], ["y", [3], "f16"]], (b, x, y) =>
          b.emit("tanh", [b.emit("add", [b.emit("mul", [x, bc(b, y, [n, 3])]), b.emit("exp", [x])])]),
        );
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      }
    }));
});
