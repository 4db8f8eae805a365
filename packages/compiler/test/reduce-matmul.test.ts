// Reductions and matrix products compiled to WGSL, with fusion and without, against the
// float64 interpreter: every axis combination of a rank-3 tensor, rows shorter and longer than
// a workgroup, tiles that do not divide the sizes (1, 3, 17, 129), batch dimensions, fused
// operand transposes and epilogues, integer and f16 variants.
import { describe, it } from "vitest";
import type { DType, GraphBuilder, Node } from "@dorafuse/core";
import { makeGraph } from "../../core/test/support/graph.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectBothSchedules, randomInputs } from "./support/run.js";

const gpu = useDevice();
const bc = (b: GraphBuilder, x: Node, shape: number[]) => b.emit("broadcast", [x], { shape });

describe("reductions", () => {
  const AXES = [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2]];
  for (const op of ["reduceSum", "reduceMax"]) {
    it(`${op} over every axis set of a rank-3 tensor, sizes 1 to 129`, () =>
      withSeed(async (rng) => {
        for (const shape of [[1, 3, 17], [3, 129, 1], [17, 3, 129], [2, 1, 300]]) {
          const g = makeGraph([["x", shape]], (b, x) => AXES.map((axes) => b.emit(op, [x], { axes })));
          await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
        }
      }));
  }
  it("a sum over a long row (one workgroup loops over 5000 elements) and over short rows packed per workgroup", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [3, 5000]], ["y", [1000, 2]]], (b, x, y) => [b.emit("reduceSum", [x], { axes: [1] }), b.emit("reduceSum", [y], { axes: [1] })]);
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target, tol: 1e-4 });
    }));
  it("reductions of fused producers: Σ exp(x)·y and max |x − y| over rows", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [17, 33]], ["y", [33]]], (b, x, y) => {
        const yb = bc(b, y, [17, 33]);
        return [b.emit("reduceSum", [b.emit("mul", [b.emit("exp", [x]), yb])], { axes: [1] }), b.emit("reduceMax", [b.emit("abs", [b.emit("sub", [x, yb])])], { axes: [0] })];
      });
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
    }));
  it("integer and f16 sums", () =>
    withSeed(async (rng) => {
      for (const dtype of ["i32", "u32", "f16"] as DType[]) {
        const g = makeGraph([["x", [5, 17], dtype]], (b, x) => [b.emit("reduceSum", [x], { axes: [1] }), b.emit("reduceMax", [x], { axes: [0] })]);
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g, { x: [-1, 1] }), { target: gpu.target });
      }
    }));
});

describe("matmul", () => {
  const SHAPES: [number, number, number][] = [
    [1, 1, 1], [3, 17, 1], [17, 3, 129], [129, 17, 3], [1, 129, 17], [129, 129, 129], [33, 65, 7],
  ];
  it("[m,k]·[k,n] for sizes that divide no tile", () =>
    withSeed(async (rng) => {
      for (const [m, k, n] of SHAPES) {
        const g = makeGraph([["a", [m, k]], ["b", [k, n]]], (b, a, w) => b.emit("matmul", [a, w]));
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      }
    }));
  it("batched products with two batch dimensions", () =>
    withSeed(async (rng) => {
      for (const [m, k, n] of [[3, 17, 5], [17, 1, 33]] as const) {
        const g = makeGraph([["a", [2, 3, m, k]], ["b", [2, 3, k, n]]], (b, a, w) => b.emit("matmul", [a, w]));
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      }
    }));
  it("a transposed operand, a broadcast weight and an elementwise epilogue fuse into the product", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["xt", [17, 4, 3]], ["w", [17, 9]], ["bias", [9]]], (b, xt, w, bias) => {
        const x = b.emit("transpose", [xt], { perm: [1, 2, 0] }); // [4,3,17]
        const wb = bc(b, w, [4, 17, 9]);
        const y = b.emit("matmul", [x, wb]);
        const z = b.emit("add", [y, bc(b, bias, [4, 3, 9])]);
        return b.emit("tanh", [z]);
      });
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
    }));
  it("integer and f16 products", () =>
    withSeed(async (rng) => {
      for (const dtype of ["i32", "f16"] as DType[]) {
        const g = makeGraph([["a", [5, 17], dtype], ["b", [17, 3], dtype]], (b, a, w) => b.emit("matmul", [a, w]));
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g, { a: [-1, 1], b: [-1, 1] }), { target: gpu.target });
      }
    }));
});
