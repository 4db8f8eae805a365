// Adapter limits shape the plan: kernels that need more storage bindings than allowed pack
// tensors of one buffer into a shared binding; dispatches larger than
// maxComputeWorkgroupsPerDimension are split over y and z; small workgroup limits give small
// workgroups and tiles. Each plan is checked dispatch by dispatch and run against the interpreter.
import { describe, expect, it } from "vitest";
import type { DType, GraphBuilder, Node } from "@dorafuse/core";
import { CompileError, lowerGraph } from "@dorafuse/compiler";
import { makeGraph } from "../../core/test/support/graph.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectMatchesInterpreter, randomInputs } from "./support/run.js";

const gpu = useDevice();
const sumOf = (b: GraphBuilder, xs: Node[]) => xs.slice(1).reduce((acc, x) => b.emit("add", [acc, x]), xs[0]!);

describe("adapter limits", () => {
  it("a kernel reading 20 tensors fits 16 storage bindings by packing, and 4 bindings too", () =>
    withSeed(async (rng) => {
      const specs = Array.from({ length: 20 }, (_, i) => [`x${i}`, [17]] as [string, number[]]);
      const g = makeGraph(specs, (b, ...xs) => [sumOf(b, xs), b.emit("mul", [xs[0]!, xs[1]!])]);
      for (const max of [16, 4]) {
        const l = await expectMatchesInterpreter(gpu.device, g, randomInputs(rng, g), { target: gpu.target, limits: { maxStorageBuffersPerShaderStage: max } });
        expect(l.plan.kernels.length).toBe(1);
        expect(l.plan.kernels[0]!.bindings.length).toBeLessThanOrEqual(max);
        expect(l.plan.kernels[0]!.wgsl).toMatch(/packed:/);
        expect(l.kernels[0]!.packed.length).toBeGreaterThan(0);
      }
    }));

  it("packing arena tensors works for intermediate results of mixed dtypes too", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [9, 5]], ["i", [9, 5], "i32"]], (b, x, i) => {
        const parts = [0, 1, 2, 3, 4].map((k) => b.emit("reduceSum", [b.emit("mul", [x, b.emit("broadcast", [b.emit("constant", [], { value: k + 1 })], { shape: [9, 5] })])], { axes: [1] }));
        const ints = b.emit("reduceMax", [i], { axes: [1] });
        return b.emit("add", [sumOf(b, parts), b.emit("cast", [ints], { dtype: "f32" as DType })]);
      });
      const l = await expectMatchesInterpreter(gpu.device, g, randomInputs(rng, g), { target: gpu.target, fusion: false, limits: { maxStorageBuffersPerShaderStage: 4 } });
      expect(l.plan.kernels.every((k) => k.bindings.length <= 4)).toBe(true);
    }));

  it("dispatches beyond maxComputeWorkgroupsPerDimension are split over y and z", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [3000]], ["a", [40, 33]], ["w", [33, 70]]], (b, x, a, w) => [
        b.emit("exp", [x]),
        b.emit("reduceSum", [b.emit("reshape", [x], { shape: [1000, 3] })], { axes: [1] }),
        b.emit("matmul", [a, w]),
      ]);
      for (const max of [4, 3]) {
        const l = await expectMatchesInterpreter(gpu.device, g, randomInputs(rng, g), { target: gpu.target, limits: { maxComputeWorkgroupsPerDimension: max } });
        const grids = l.plan.steps.flatMap((s) => (s.kind === "dispatch" ? [s.workgroups] : []));
        expect(grids.every((w) => w.every((d) => d <= max))).toBe(true);
        expect(grids.some((w) => w[max === 4 ? 1 : 2] > 1)).toBe(true);
      }
      // more workgroups than max³ cannot be launched at all: a CompileError, not a bad plan
      expect(() => lowerGraph(g, { target: gpu.target, limits: { maxComputeWorkgroupsPerDimension: 2 } })).toThrow(/needs 12 workgroups, more than 2³/);
    }));

  it("small workgroup limits give small workgroups and matmul tiles", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["a", [17, 33]], ["w", [33, 9]]], (b, a, w) => [b.emit("matmul", [a, w]), b.emit("reduceSum", [a], { axes: [1] })]);
      const l = await expectMatchesInterpreter(gpu.device, g, randomInputs(rng, g), {
        target: gpu.target,
        limits: { maxComputeInvocationsPerWorkgroup: 64, maxComputeWorkgroupSizeX: 64, maxComputeWorkgroupStorageSize: 4096 },
      });
      expect(l.plan.kernels.every((k) => k.workgroupSize[0] <= 64)).toBe(true);
    }));

  it("f16 on an adapter without shader-f16 is a CompileError naming the node", () => {
    const g = makeGraph([["x", [4], "f16"]], (b, x) => b.emit("exp", [x]));
    expect(() => lowerGraph(g, { target: { ...gpu.target, f16: false } })).toThrow(CompileError);
    expect(() => lowerGraph(g, { target: { ...gpu.target, f16: false } })).toThrow(/no shader-f16[\s\S]*exp/);
  });

  it("limits above the adapter's are refused", () => {
    const g = makeGraph([["x", [4]]], (b, x) => b.emit("exp", [x]));
    expect(() => lowerGraph(g, { target: gpu.target, limits: { maxStorageBuffersPerShaderStage: 1000 } })).toThrow(/maxStorageBuffersPerShaderStage: expected a positive integer ≤ 16/);
  });
});

describe("tensors larger than one binding", () => {
  it("are bound in slices of at most maxStorageBufferBindingSize, read and written across slice edges", () =>
    withSeed(async (rng) => {
      // 1000 floats = 4000 bytes against 1024-byte bindings: four slices per tensor
      const g = makeGraph([["x", [1000]], ["w", [10, 100]], ["v", [100, 3]]], (b, x, w, v) => [
        b.emit("exp", [b.emit("neg", [x])]),
        b.emit("reduceSum", [b.emit("mul", [b.emit("reshape", [x], { shape: [10, 100] }), w])], { axes: [0] }),
        b.emit("matmul", [w, v]),
      ]);
      for (const fusion of [true, false]) {
        const l = await expectMatchesInterpreter(gpu.device, g, randomInputs(rng, g), { target: gpu.target, fusion, limits: { maxStorageBufferBindingSize: 1024 } });
        const sizes = l.plan.steps.flatMap((s) => (s.kind === "dispatch" ? s.bindings.map((b) => b.size) : []));
        expect(Math.max(...sizes)).toBeLessThanOrEqual(1024);
        expect(l.plan.kernels.some((k) => /slice 4/.test(k.wgsl))).toBe(true);
      }
    }));
});
