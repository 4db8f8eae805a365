// Library extension points beyond the element-wise custom kernel (examples/custom-op covers
// that): a custom op with its own cooperative kernel body, and a registered graph pass.
import { describe, expect, it } from "vitest";
import { DTypeError, spec, trace, type Tensor } from "@dorafuse/core";
import { defineOp, lowerGraph, registerPass, rewrite, unregisterPass } from "@dorafuse/compiler";
import { makeGraph } from "../../core/test/support/graph.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectBothSchedules, expectMatchesInterpreter, randomInputs } from "./support/run.js";

const gpu = useDevice();
const WG = 64;

// Σ of all elements, by one workgroup: each invocation sums a stride, then a tree in workgroup memory.
const sumAll = defineOp({
  primitive: {
    name: "test.sumAll",
    kind: "custom",
    arity: 1,
    infer: ([x]) => {
      if (x!.dtype !== "f32") throw new DTypeError(`test.sumAll: expects f32, found ${x!.dtype}`, "test.sumAll");
      return { shape: [], dtype: "f32" };
    },
    evaluate: ([x]) => Float64Array.of(x!.reduce((a, b) => a + b, 0)),
    vjp: (ct, node, b) => [b.emit("broadcast", [ct], { shape: [...node.inputs[0]!.shape] })],
  },
  kernel: {
    body: (ctx) => {
      const n = ctx.node.inputs[0]!.shape.reduce((a, b) => a * b, 1);
      ctx.workgroupVar(`partial: array<f32, ${WG}>`);
      return {
        workgroupSize: WG,
        workgroups: 1,
        flops: n,
        body: [
          "var acc = 0.0;",
          `for (var i = lid; i < ${n}u; i += ${WG}u) { acc += ${ctx.input(0, "i")}; }`,
          "partial[lid] = acc;",
          "workgroupBarrier();",
          `for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {`,
          "  if (lid < s) { partial[lid] += partial[lid + s]; }",
          "  workgroupBarrier();",
          "}",
          `if (lid == 0u) { ${ctx.output("0u", "partial[0]")} }`,
        ],
      };
    },
  },
});

describe("custom kernel bodies and passes", () => {
  it("a custom op with its own cooperative kernel runs between materialized neighbours", () =>
    withSeed(async (rng) => {
      const g = trace((x: Tensor) => (sumAll([(x as Tensor<number[], "f32">).exp()]) as Tensor<[], "f32">).mul(2), [spec([3, 129])]).graph;
      const { fused } = await expectBothSchedules(gpu.device, g, randomInputs(rng, g), { target: gpu.target });
      expect(fused.schedule.groups.map((k) => k.kind)).toEqual(["map", "custom", "map"]);
      expect(fused.plan.kernels[1]!.wgsl).toMatch(/var<workgroup> partial: array<f32, 64>;/);
    }));

  it("a registered pass runs after the built-in ones on every compiled graph", () =>
    withSeed(async (rng) => {
      // rewrites exp(log(x)) to x (for positive x, which the test feeds)
      registerPass("test.expLog", (graph) => rewrite(graph, (n) => (n.op === "exp" && n.inputs[0]!.op === "log" ? n.inputs[0]!.inputs[0] : undefined)));
      try {
        const g = makeGraph([["x", [17]]], (b, x) => b.emit("mul", [b.emit("exp", [b.emit("log", [x])]), x]));
        const l = await expectMatchesInterpreter(gpu.device, g, randomInputs(rng, g, { x: [0.5, 2] }), { target: gpu.target });
        expect(l.graph.nodes.map((n) => n.op)).toEqual(["input", "mul"]);
        expect(lowerGraph(g, { target: gpu.target, optimize: false }).graph.nodes.map((n) => n.op)).toContain("exp");
      } finally {
        unregisterPass("test.expLog");
      }
    }));
});
