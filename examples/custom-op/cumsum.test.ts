// The custom op end to end: compiled (with its producers and consumers fused into its kernel,
// and without fusion) against the float64 interpreter using the op's own reference; its VJP
// against central finite differences; and the compiled gradient against the interpreter.
import { describe, expect, it } from "vitest";
import { interpret, spec, trace, valueAndGrad, vjpGraph, type Tensor } from "@dorafuse/core";
import { lowerGraph } from "@dorafuse/compiler";
import { withSeed } from "../../packages/core/test/support/random.js";
import { expectClose, finiteDiff } from "../../packages/core/test/support/numeric.js";
import { useDevice } from "../../packages/compiler/test/support/device.js";
import { expectBothSchedules, randomInputs } from "../../packages/compiler/test/support/run.js";
import { cumsum } from "./cumsum.js";

const gpu = useDevice();
type F = Tensor<number[], "f32">;
const T = (x: unknown) => x as F;

describe("custom op: cumsum", () => {
  it("runs on the GPU as one kernel with its prologue and epilogue fused, matching the interpreter", () =>
    withSeed(async (rng) => {
      for (const shape of [[1], [3, 17], [2, 3, 129]]) {
        const g = trace((x: Tensor, y: Tensor) => cumsum(T(x).exp()).mul(T(y)), [spec(shape), spec(shape)]).graph;
        const { fused, unfused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target, tol: 1e-5 });
        expect(fused.schedule.groups.map((k) => k.kind)).toEqual(["custom"]);
        expect(unfused.schedule.groups.length).toBe(3);
      }
    }));

  it("its VJP matches central finite differences", () =>
    withSeed((rng) => {
      const fwd = trace((x: Tensor) => cumsum(T(x)).mul(T(x)).sum(), [spec([2, 7])]).graph;
      const x = randomInputs(rng, fwd)[0]!;
      const grad = interpret(vjpGraph(fwd, [0]), [x, Float64Array.of(1)])[1]!;
      expectClose(grad, finiteDiff((xs) => interpret(fwd, xs)[0]![0]!, [x], 0), 1e-6, "d/dx Σ x·cumsum(x)");
    }));

  it("its gradient compiles and matches the interpreter, second derivatives included", () =>
    withSeed(async (rng) => {
      const loss = (x: Tensor) => cumsum(T(x).tanh()).mul(T(x)).sum();
      const g1 = trace((x: Tensor) => valueAndGrad(loss)(x), [spec([3, 9])]).graph;
      await expectBothSchedules(gpu.device, g1, randomInputs(rng, g1), { target: gpu.target, tol: 1e-4 });
      const g2 = trace((x: Tensor) => valueAndGrad((y: Tensor) => T(valueAndGrad(loss)(y)[1]).sum())(x), [spec([3, 9])]).graph;
      await expectBothSchedules(gpu.device, g2, randomInputs(rng, g2), { target: gpu.target, tol: 1e-4 });
    }));

  it("explain shows the user's WGSL inside the kernel", () => {
    const g = trace((x: Tensor) => cumsum(T(x)), [spec([4, 5])]).graph;
    const wgsl = lowerGraph(g, { target: gpu.target }).plan.kernels[0]!.wgsl;
    expect(wgsl).toMatch(/fn op_examples_cumsum\(i0: u32, i1: u32\) -> f32 \{/);
    expect(wgsl).toMatch(/acc = acc \+ x0\(i0, j\);/);
  });
});
