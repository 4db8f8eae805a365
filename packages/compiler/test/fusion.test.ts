// What fusion does, asserted on the schedule (kernel counts and kinds, and the reasons given
// for boundaries), with every graph also run fused and unfused against the interpreter.
import { describe, expect, it } from "vitest";
import { gelu, layerNorm, softmax, trace, spec, type GraphBuilder, type Node, type Tensor } from "@dorafuse/core";
import { lowerGraph } from "@dorafuse/compiler";
import { makeGraph } from "../../core/test/support/graph.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectBothSchedules, randomInputs } from "./support/run.js";

const gpu = useDevice();
const bc = (b: GraphBuilder, x: Node, shape: number[]) => b.emit("broadcast", [x], { shape });
const kinds = (l: ReturnType<typeof lowerGraph>) => l.schedule.groups.map((g) => g.kind);
const T = (x: unknown) => x as Tensor<number[], "f32">;

describe("fusion", () => {
  it("an elementwise chain of ten ops over broadcast operands is one kernel", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [17, 9]], ["b", [9]]], (b, x, y) => {
        let v = x;
        for (const op of ["exp", "neg", "tanh", "abs", "sqrt"]) v = b.emit("add", [b.emit(op, [v]), bc(b, y, [17, 9])]);
        return v;
      });
      const { fused, unfused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(kinds(fused)).toEqual(["map"]);
      expect(unfused.schedule.groups.length).toBe(g.nodes.filter((n) => n.op !== "input" && n.op !== "constant").length);
    }));

  it("softmax is one row kernel: max, sum and the normalized output share it", () =>
    withSeed(async (rng) => {
      const g = trace((x: Tensor) => softmax(T(x)), [spec([6, 33])]).graph;
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(kinds(fused)).toEqual(["reduce"]);
      expect(fused.schedule.groups[0]!.anchors.map((a) => a.op)).toEqual(["reduceMax", "reduceSum"]);
    }));

  it("layerNorm with scale and shift is one row kernel", () =>
    withSeed(async (rng) => {
      const g = trace((x: Tensor, w: Tensor, c: Tensor) => layerNorm(T(x), T(w) as never, T(c) as never), [spec([2, 5, 17]), spec([17]), spec([17])]).graph;
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(kinds(fused)).toEqual(["reduce"]);
    }));

  it("a linear layer with bias and GELU is one matmul kernel with the rest in its epilogue", () =>
    withSeed(async (rng) => {
      const g = trace((x: Tensor, w: Tensor, c: Tensor) => gelu(T(x).matmul(T(w).mT() as never).add(T(c) as never)), [spec([4, 3, 17]), spec([9, 17]), spec([9])]).graph;
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(kinds(fused)).toEqual(["matmul"]);
      expect(fused.schedule.merges.join("\n")).toMatch(/epilogue/);
    }));

  it("two outputs over the same inputs and shape become one kernel with two outputs", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [33]], ["y", [33]], ["z", [5]]], (b, x, y, z) => [b.emit("mul", [x, y]), b.emit("sub", [x, y]), b.emit("exp", [z])]);
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(fused.schedule.groups.map((k) => k.outputs.length).sort()).toEqual([1, 2]);
    }));

  it("a reduction read back through a transpose stays a separate kernel, and says why", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [5, 5]]], (b, x) => {
        const s = b.emit("reshape", [b.emit("reduceSum", [x], { axes: [1] })], { shape: [5, 1] });
        return b.emit("sub", [x, b.emit("transpose", [bc(b, s, [5, 5])], { perm: [1, 0] })]);
      });
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(kinds(fused)).toEqual(["reduce", "map"]);
      const sum = fused.schedule.groups[0]!.outputs[0]!;
      expect(fused.schedule.reasons.get(sum)).toMatch(/another position than the row being reduced/);
    }));

  it("rows longer than the fused-row limit are reduced in their own kernel, and say why", () =>
    withSeed(async (rng) => {
      const g = trace((x: Tensor) => softmax(T(x)), [spec([3, 40])]).graph;
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target, maxFusedRow: 32 });
      expect(fused.schedule.groups.length).toBeGreaterThan(1);
      expect([...fused.schedule.reasons.values()].join("\n")).toMatch(/rows hold 40 elements, more than one fused kernel takes \(32\)/);
    }));

  it("an expensive value read by two kernels is computed once; a cheap one is recomputed in each", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [9, 17]]], (b, x) => {
        const costly = b.emit("exp", [b.emit("tanh", [b.emit("log", [b.emit("abs", [x])])])]);
        const cheap = b.emit("neg", [x]);
        return [b.emit("reduceSum", [b.emit("mul", [costly, cheap])], { axes: [0] }), b.emit("reduceMax", [b.emit("add", [costly, cheap])], { axes: [1] })];
      });
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      const materialized = fused.schedule.groups.flatMap((k) => k.outputs).map((n) => n.op);
      expect(materialized).toContain("exp");
      expect(materialized).not.toContain("neg");
      const exp = fused.schedule.groups.flatMap((k) => k.outputs).find((n) => n.op === "exp")!;
      expect(fused.schedule.reasons.get(exp)).toMatch(/read by 2 kernels/);
    }));

  it("a costly matmul operand is materialized under its views, which stay fused as index math", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [17, 9]], ["w", [17, 5]]], (b, x, w) => {
        const act = b.emit("exp", [b.emit("tanh", [x])]);
        return b.emit("matmul", [b.emit("transpose", [act], { perm: [1, 0] }), w]);
      });
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      const mat = fused.schedule.groups.flatMap((k) => k.outputs).find((n) => n.op === "exp");
      expect(mat).toBeDefined();
      expect(fused.schedule.reasons.get(mat!)).toMatch(/operand of matmul/);
    }));

  it("every fused kernel in a training step is smaller in number than the primitives", () => {
    const g = trace((x: Tensor, w: Tensor) => softmax(T(x).matmul(T(w))).sum(), [spec([8, 16]), spec([16, 8])]).graph;
    const fused = lowerGraph(g, { target: gpu.target });
    const unfused = lowerGraph(g, { target: gpu.target, fusion: false });
    expect(fused.totals.kernels).toBeLessThan(unfused.totals.kernels);
    expect(fused.totals.bytesRead + fused.totals.bytesWritten).toBeLessThan(unfused.totals.bytesRead + unfused.totals.bytesWritten);
  });
});
