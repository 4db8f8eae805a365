// Graphs at the edges of the interface: outputs that are inputs, the same output twice, empty
// tensors, scalars, and graphs that compute nothing at all.
import { describe, it } from "vitest";
import { makeGraph } from "../../core/test/support/graph.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectBothSchedules, randomInputs } from "./support/run.js";

const gpu = useDevice();

describe("edge cases", () => {
  it("an output that is an input, and one node returned twice", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [5]], ["y", [5]]], (b, x, y) => {
        const s = b.emit("add", [x, y]);
        return [x, s, s];
      });
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
    }));

  it("empty tensors flow through elementwise ops, reductions and matmuls", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [0, 3]], ["w", [3, 4]], ["z", [4, 0]]], (b, x, w, z) => [
        b.emit("exp", [x]),
        b.emit("reduceSum", [x], { axes: [0] }),
        b.emit("matmul", [x, w]),
        b.emit("reduceSum", [z], { axes: [1] }),
        b.emit("reduceMax", [z], { axes: [1] }),
      ]);
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
    }));

  it("scalars in and out", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["s", []], ["t", []]], (b, s, t) => [b.emit("mul", [s, t]), b.emit("reduceSum", [b.emit("broadcast", [s], { shape: [3] })], { axes: [0] })]);
      await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
    }));
});
