// Every primitive through the GPU path: a table with one small graph per built-in primitive,
// typed over core's PrimitiveName (a new primitive without an example does not compile), and
// a walk over listPrimitives() that compiles each — fused and one kernel per primitive — and
// compares it with the float64 interpreter on fresh random inputs.
import { describe, expect, it } from "vitest";
import { graphRef, listPrimitives, type GraphBuilder, type Node, type PrimitiveName } from "@dorafuse/core";
import { makeGraph, type InputSpec } from "../../core/test/support/graph.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectBothSchedules, randomInputs } from "./support/run.js";

const gpu = useDevice();

interface Example {
  inputs: readonly InputSpec[];
  build: (b: GraphBuilder, ...xs: Node[]) => Node | Node[];
  /** Value ranges by input name (keys, indices, positive operands). */
  ranges?: Record<string, [number, number]>;
}

const unary = (op: string, ranges?: [number, number]): Example => ({ inputs: [["x", [5, 7]]], build: (b, x) => b.emit(op, [x!]), ...(ranges ? { ranges: { x: ranges } } : {}) });
const binary = (op: string, ranges?: [number, number]): Example => ({ inputs: [["x", [5, 7]], ["y", [5, 7]]], build: (b, x, y) => b.emit(op, [x!, y!]), ...(ranges ? { ranges: { x: ranges, y: ranges } } : {}) });
const compare = (op: string): Example => ({ inputs: [["x", [5, 7]], ["y", [5, 7]]], build: (b, x, y) => b.emit("cast", [b.emit(op, [x!, y!])], { dtype: "f32" }) });
const logical = (op: string): Example => ({
  inputs: [["x", [5, 7]], ["y", [5, 7]]],
  build: (b, x, y) => {
    const zero = b.emit("broadcast", [b.emit("constant", [], { value: 0, dtype: "f32" })], { shape: [5, 7] });
    const args = op === "not" ? [b.emit("gt", [x!, zero])] : [b.emit("gt", [x!, zero]), b.emit("gt", [y!, zero])];
    return b.emit("cast", [b.emit(op, args)], { dtype: "f32" });
  },
});

// a DoRA layer: x [6, 40], W [24, 40], A [4, 40], B [24, 4], m [24]
const DORA: InputSpec[] = [["x", [6, 40]], ["w", [24, 40]], ["a", [4, 40]], ["bm", [24, 4]], ["m", [24]]];
const doraAttrs = { scale: 2, eps: 1e-12, clamp: true, rate: 0, detach: false, bias: false };
const doraSave = (b: GraphBuilder, xs: Node[]) => b.emit("doraLinear", xs.slice(0, 5), { ...doraAttrs, save: true });

const EXAMPLES: { readonly [P in PrimitiveName]: Example } = {
  input: { inputs: [["x", [3]]], build: (b, x) => b.emit("neg", [x!]) },
  constant: { inputs: [["x", [3]]], build: (b, x) => b.emit("add", [x!, b.emit("broadcast", [b.emit("constant", [], { value: 1.5, dtype: "f32" })], { shape: [3] })]) },
  iota: { inputs: [["x", [4, 3]]], build: (b, x) => b.emit("add", [x!, b.emit("iota", [], { shape: [4, 3], axis: 0, dtype: "f32" })]) },
  neg: unary("neg"),
  exp: unary("exp"),
  log: unary("log", [0.1, 3]),
  sin: unary("sin"),
  cos: unary("cos"),
  tanh: unary("tanh"),
  sqrt: unary("sqrt", [0.1, 3]),
  rsqrt: unary("rsqrt", [0.1, 3]),
  abs: unary("abs"),
  sign: unary("sign"),
  recip: unary("recip", [0.5, 3]),
  floor: unary("floor"),
  ceil: unary("ceil"),
  erf: unary("erf"),
  add: binary("add"),
  sub: binary("sub"),
  mul: binary("mul"),
  div: binary("div", [0.5, 3]),
  pow: binary("pow", [0.5, 2]),
  max: binary("max"),
  min: binary("min"),
  eq: compare("eq"),
  ne: compare("ne"),
  lt: compare("lt"),
  le: compare("le"),
  gt: compare("gt"),
  ge: compare("ge"),
  and: logical("and"),
  or: logical("or"),
  not: logical("not"),
  cast: { inputs: [["x", [5, 7]]], build: (b, x) => b.emit("cast", [b.emit("cast", [x!], { dtype: "i32" })], { dtype: "f32" }), ranges: { x: [-9, 9] } },
  where: { inputs: [["x", [5, 7]], ["y", [5, 7]]], build: (b, x, y) => b.emit("where", [b.emit("gt", [x!, y!]), x!, b.emit("exp", [y!])]) },
  stopGradient: { inputs: [["x", [5, 7]]], build: (b, x) => b.emit("exp", [b.emit("stopGradient", [x!])]) },
  reduceSum: { inputs: [["x", [5, 7, 3]]], build: (b, x) => b.emit("reduceSum", [x!], { axes: [0, 2] }) },
  reduceMax: { inputs: [["x", [5, 70]]], build: (b, x) => b.emit("reduceMax", [x!], { axes: [1] }) },
  matmul: { inputs: [["x", [2, 5, 7]], ["y", [2, 7, 9]]], build: (b, x, y) => b.emit("matmul", [x!, y!]) },
  reshape: { inputs: [["x", [6, 4]]], build: (b, x) => b.emit("exp", [b.emit("reshape", [x!], { shape: [2, 3, 4] })]) },
  transpose: { inputs: [["x", [2, 3, 4]]], build: (b, x) => b.emit("exp", [b.emit("transpose", [x!], { perm: [2, 0, 1] })]) },
  broadcast: { inputs: [["x", [3, 1]]], build: (b, x) => b.emit("exp", [b.emit("broadcast", [x!], { shape: [2, 3, 5] })]) },
  slice: { inputs: [["x", [6, 5]]], build: (b, x) => b.emit("exp", [b.emit("slice", [x!], { start: [1, 2], end: [5, 5] })]) },
  pad: { inputs: [["x", [3, 4]]], build: (b, x) => b.emit("exp", [b.emit("pad", [x!], { low: [1, 0], high: [2, 3] })]) },
  concat: { inputs: [["x", [3, 4]], ["y", [3, 2]]], build: (b, x, y) => b.emit("concat", [x!, y!], { axis: 1 }) },
  // indices in range: drawn as floats, truncated by the cast
  gather: { inputs: [["x", [9, 4]], ["i", [5]]], build: (b, x, i) => b.emit("gather", [x!, b.emit("cast", [i!], { dtype: "i32" })], { axis: 0 }), ranges: { i: [0, 8.9] } },
  scatterAdd: { inputs: [["i", [6]], ["u", [6, 4]]], build: (b, i, u) => b.emit("scatterAdd", [b.emit("cast", [i!], { dtype: "i32" }), u!], { axis: 0, shape: [5, 4] }), ranges: { i: [0, 4.9] } },
  randomBits: { inputs: [["k", [2], "u32"]], build: (b, k) => b.emit("randomBits", [k!], { shape: [4, 5] }) },
  threefry2x32: { inputs: [["k", [2], "u32"], ["c", [3, 2], "u32"]], build: (b, k, c) => b.emit("threefry2x32", [k!, c!]) },
  call: {
    inputs: [["x", [5, 7]]],
    build: (b, x) => b.emit("call", [x!], { body: graphRef(makeGraph([["y", [5, 7]]], (c, y) => c.emit("mul", [y!, c.emit("exp", [y!])]))), mode: "checkpoint" }),
  },
  doraLinear: { inputs: DORA, build: (b, ...xs) => b.emit("doraLinear", xs, doraAttrs), ranges: { m: [1, 3] } },
  doraStats: { inputs: DORA.slice(0, 4), build: (b, ...xs) => b.emit("doraStats", xs, doraAttrs) },
  doraGradRows: {
    inputs: [...DORA, ["gy", [6, 24]]],
    build: (b, ...xs) => b.emit("doraGradRows", [xs[5]!, doraSave(b, xs), xs[3]!, xs[4]!], doraAttrs),
    ranges: { m: [1, 3] },
  },
  doraGradCols: {
    inputs: [...DORA, ["gy", [6, 24]]],
    build: (b, ...xs) => {
      const save = doraSave(b, xs);
      const rows = b.emit("doraGradRows", [xs[5]!, save, xs[3]!, xs[4]!], doraAttrs);
      return b.emit("doraGradCols", [xs[5]!, save, rows, ...xs.slice(0, 5)], doraAttrs);
    },
    ranges: { m: [1, 3] },
  },
};

describe("every primitive compiles through the GPU path", () => {
  for (const prim of listPrimitives()) {
    it(prim.name, () =>
      withSeed(async (rng) => {
        const ex = (EXAMPLES as Record<string, Example | undefined>)[prim.name];
        expect(ex, `no example graph for primitive "${prim.name}": add one to EXAMPLES`).toBeDefined();
        const g = makeGraph(ex!.inputs, ex!.build);
        // the primitive is in the graph as traced (the passes may then fold or inline it)
        expect(g.nodes.some((n) => n.op === prim.name)).toBe(true);
        await expectBothSchedules(gpu.device, g, randomInputs(rng, g, ex!.ranges), { target: gpu.target, tol: 1e-4 });
      }));
  }
});
