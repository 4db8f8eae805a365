// Layout ops, gather, scatterAdd and random bits compiled to WGSL, with fusion (as index
// arithmetic inside consumers) and without (as copy kernels), against the interpreter.
import { describe, it } from "vitest";
import type { GraphBuilder, Node } from "@dorafuse/core";
import { makeGraph } from "../../core/test/support/graph.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectBothSchedules, randomInputs } from "./support/run.js";

const gpu = useDevice();
const exp = (b: GraphBuilder, x: Node) => b.emit("exp", [x]);

describe("layout ops", () => {
  it("reshape that splits, merges and inserts unit dimensions", () =>
    withSeed(async (rng) => {
      for (const n of [1, 3, 17]) {
        const g = makeGraph([["x", [2, 3, n]]], (b, x) => [
          b.emit("reshape", [x], { shape: [6, n] }),
          exp(b, b.emit("reshape", [x], { shape: [n, 1, 6] })),
          b.emit("reshape", [exp(b, x)], { shape: [3, 2 * n] }),
          b.emit("reshape", [x], { shape: [6 * n] }),
        ]);
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      }
    }));
  it("transpose with every permutation of rank 3", () =>
    withSeed(async (rng) => {
      const perms = [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
      const g = makeGraph([["x", [3, 17, 5]]], (b, x) => perms.map((perm) => exp(b, b.emit("transpose", [x], { perm }))));
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
    }));
  it("broadcast of scalars, unit dimensions and added leading dimensions", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["s", []], ["c", [17, 1]], ["r", [3]]], (b, s, c, r) => [
        b.emit("broadcast", [s], { shape: [4, 3] }),
        b.emit("broadcast", [c], { shape: [2, 17, 5] }),
        exp(b, b.emit("broadcast", [r], { shape: [129, 3] })),
      ]);
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
    }));
  it("slice, pad and concat, including unit and empty pieces", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [17, 5]], ["y", [17, 1]], ["z", [3, 5]]], (b, x, y, z) => [
        b.emit("slice", [x], { start: [2, 1], end: [15, 4] }),
        exp(b, b.emit("slice", [x], { start: [16, 0], end: [17, 5] })),
        b.emit("pad", [x], { low: [1, 0], high: [2, 3] }),
        exp(b, b.emit("pad", [z], { low: [0, 2], high: [0, 0] })),
        b.emit("concat", [x, y, x], { axis: 1 }),
        exp(b, b.emit("concat", [z, x, b.emit("slice", [z], { start: [0, 0], end: [0, 5] })], { axis: 0 })),
      ]);
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
    }));
});

describe("gather and scatterAdd", () => {
  it("gather along each axis with indices out of range clamped as the interpreter clamps", () =>
    withSeed(async (rng) => {
      for (const n of [1, 3, 17]) {
        const g = makeGraph([["x", [n, 4, 3]], ["i", [2, 5], "i32"], ["u", [7], "u32"]], (b, x, i, u) => [
          b.emit("gather", [x, i], { axis: 0 }),
          exp(b, b.emit("gather", [x, i], { axis: 1 })),
          b.emit("gather", [x, u], { axis: 2 }),
        ]);
        const xs = randomInputs(rng, g);
        xs[1] = xs[1]!.map(() => rng.int(-2, n + 3));
        xs[2] = xs[2]!.map(() => rng.int(0, 5));
        await expectBothSchedules(gpu.device, g, xs, { target: gpu.target });
      }
    }));
  it("scatterAdd sums colliding updates deterministically, along each axis", () =>
    withSeed(async (rng) => {
      for (const n of [1, 3, 17]) {
        const g = makeGraph([["i", [9], "i32"], ["u0", [9, 4]], ["u1", [4, 9, 2]]], (b, i, u0, u1) => [
          b.emit("scatterAdd", [i, u0], { axis: 0, shape: [n, 4] }),
          b.emit("scatterAdd", [i, exp(b, u1)], { axis: 1, shape: [4, n, 2] }),
        ]);
        const xs = randomInputs(rng, g);
        xs[0] = xs[0]!.map(() => rng.int(-1, n + 1));
        await expectBothSchedules(gpu.device, g, xs, { target: gpu.target });
      }
    }));
});

describe("random bits", () => {
  it("randomBits is bit-identical to the interpreter's threefry2x32 stream", () =>
    withSeed(async (rng) => {
      for (const shape of [[1], [3, 17], [129, 5]]) {
        const g = makeGraph([["key", [2], "u32"]], (b, key) => b.emit("randomBits", [key], { shape }));
        const key = Float64Array.from([rng.int(0, 2 ** 31), rng.int(0, 2 ** 31)]);
        await expectBothSchedules(gpu.device, g, [key], { target: gpu.target });
      }
    }));
});

describe("f16 layout and indexing", () => {
  it("transpose, concat, pad, gather and scatterAdd on f16 tensors", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [5, 3], "f16"], ["i", [7], "i32"]], (b, x, i) => [
        b.emit("transpose", [x], { perm: [1, 0] }),
        b.emit("concat", [x, b.emit("pad", [x], { low: [0, 1], high: [0, 0] })], { axis: 1 }),
        b.emit("gather", [x, i], { axis: 0 }),
        b.emit("scatterAdd", [i, b.emit("gather", [x, i], { axis: 0 })], { axis: 0, shape: [5, 3] }),
      ]);
      const xs = randomInputs(rng, g);
      xs[1] = xs[1]!.map(() => rng.int(0, 4));
      await expectBothSchedules(gpu.device, g, xs, { target: gpu.target });
    }));
});
