// The graph passes, each on a graph built to need it: the rewritten graph is smaller in the
// way the pass promises and computes the same values as the original in the interpreter.
import { describe, expect, it } from "vitest";
import { buildGraph, checkpoint, GraphBuilder, interpret, spec, trace, valueAndGrad, type Graph, type Tensor } from "@dorafuse/core";
import { canonicalize, cse, dce, foldConstants, inlineCalls, optimize, simplify } from "@dorafuse/compiler";
import { makeGraph } from "../../core/test/support/graph.js";
import { withSeed, type Rng } from "../../core/test/support/random.js";
import { relErr } from "../../core/test/support/numeric.js";
import { randomInputs } from "./support/run.js";

type F = Tensor<number[], "f32">;
const T = (x: unknown) => x as F;
const ops = (g: Graph) => g.nodes.filter((n) => n.op !== "input").map((n) => n.op);

function expectSameValues(rng: Rng, a: Graph, b: Graph): void {
  const xs = randomInputs(rng, a);
  const ya = interpret(a, xs);
  const yb = interpret(b, xs);
  ya.forEach((y, i) => expect(relErr(yb[i]!, y)).toBeLessThanOrEqual(1e-12));
}

describe("passes", () => {
  it("canonicalize orders commutative operands, so a+b and b+a become one node", () =>
    withSeed((rng) => {
      const g = makeGraph([["a", [3]], ["b", [3]]], (b, x, y) => b.emit("mul", [b.emit("add", [x, y]), b.emit("add", [y, x])]));
      const c = canonicalize(g);
      expect(ops(c).filter((o) => o === "add")).toHaveLength(1);
      expectSameValues(rng, g, c);
    }));

  it("canonicalize drops identity layout ops, same-dtype casts, empty reductions and stopGradient", () =>
    withSeed((rng) => {
      const g = makeGraph([["x", [3, 4]]], (b, x) => {
        let v = b.emit("transpose", [x], { perm: [0, 1] });
        v = b.emit("reshape", [v], { shape: [3, 4] });
        v = b.emit("cast", [v], { dtype: "f32" });
        v = b.emit("reduceSum", [v], { axes: [] });
        return b.emit("exp", [b.emit("stopGradient", [v])]);
      });
      const c = canonicalize(g);
      expect(ops(c)).toEqual(["exp"]);
      expectSameValues(rng, g, c);
    }));

  it("cse merges equal nodes built by different builders", () =>
    withSeed((rng) => {
      const b1 = new GraphBuilder();
      const x = b1.input("x", [5], "f32");
      const y1 = b1.emit("exp", [x]);
      const y2 = new GraphBuilder().emit("exp", [x]);
      const g = buildGraph([b1.emit("add", [y1, y2])], [x]);
      expect(ops(g).filter((o) => o === "exp")).toHaveLength(2);
      const c = cse(g);
      expect(ops(c).filter((o) => o === "exp")).toHaveLength(1);
      expectSameValues(rng, g, c);
    }));

  it("dce keeps unused inputs and drops what the outputs do not reach", () => {
    const b = new GraphBuilder();
    const x = b.input("x", [2], "f32");
    const unused = b.input("unused", [2], "f32");
    const dead = b.emit("exp", [x]);
    const live = b.emit("neg", [x]);
    const g: Graph = { inputs: [x, unused], outputs: [live], nodes: [x, unused, dead, live] };
    const d = dce(g);
    expect(d.inputs).toHaveLength(2);
    expect(ops(d)).toEqual(["neg"]);
  });

  it("constant folding evaluates ops on constants and their broadcasts, rounded to f32", () =>
    withSeed((rng) => {
      const g = makeGraph([["x", [4]]], (b, x) => {
        const c = (v: number) => b.emit("broadcast", [b.emit("constant", [], { value: v })], { shape: [4] });
        const k = b.emit("exp", [b.emit("mul", [c(0.1), c(3)])]);
        return b.emit("add", [x, k]);
      });
      const f = foldConstants(g);
      expect(ops(f).filter((o) => o === "exp" || o === "mul")).toHaveLength(0);
      const k = f.nodes.find((n) => n.op === "constant")!;
      // as the device computes it: f32 constants, each result rounded to f32
      expect(k.attrs.value).toBe(Math.fround(Math.exp(Math.fround(Math.fround(0.1) * 3))));
      const xs = randomInputs(rng, g);
      expect(relErr(interpret(f, xs)[0]!, interpret(g, xs)[0]!)).toBeLessThan(1e-7);
    }));

  it("simplify removes ×1, +0, −0, ÷1 and double negation", () =>
    withSeed((rng) => {
      const g = makeGraph([["x", [6]]], (b, x) => {
        const c = (v: number) => b.emit("broadcast", [b.emit("constant", [], { value: v })], { shape: [6] });
        let v = b.emit("mul", [x, c(1)]);
        v = b.emit("add", [c(0), v]);
        v = b.emit("sub", [v, c(0)]);
        v = b.emit("div", [v, c(1)]);
        return b.emit("neg", [b.emit("neg", [v])]);
      });
      const s = simplify(g);
      expect(s.outputs[0]).toBe(s.inputs[0]);
      expectSameValues(rng, g, s);
    }));

  it("simplify composes transpose∘transpose and reshape∘reshape, and turns a sum of a broadcast into a product", () =>
    withSeed((rng) => {
      const g = makeGraph([["x", [2, 3, 4]], ["v", [3]]], (b, x, v) => [
        b.emit("transpose", [b.emit("transpose", [x], { perm: [1, 2, 0] })], { perm: [2, 0, 1] }),
        b.emit("reshape", [b.emit("reshape", [x], { shape: [6, 4] })], { shape: [24] }),
        b.emit("reduceSum", [b.emit("broadcast", [v], { shape: [5, 3] })], { axes: [0] }),
        b.emit("reduceMax", [b.emit("broadcast", [b.emit("reshape", [v], { shape: [3, 1] })], { shape: [3, 7] })], { axes: [1] }),
      ]);
      const s = simplify(g);
      expect(s.outputs[0]).toBe(s.inputs[0]);
      expect(s.outputs[3]).toBe(s.inputs[1]); // max over a repeated axis of a reshaped v is v
      expect(ops(s).filter((o) => o === "reshape")).toHaveLength(1);
      expect(ops(s)).not.toContain("reduceSum");
      expect(ops(s)).not.toContain("reduceMax");
      expectSameValues(rng, g, s);
    }));

  it("inlineCalls splices checkpoint bodies in, so no call node reaches fusion", () =>
    withSeed((rng) => {
      const g = trace((x: Tensor) => valueAndGrad((y: Tensor) => checkpoint((z: F) => z.exp().mul(z).sum())(T(y)) as F)(x), [spec([7])]).graph;
      expect(ops(g)).toContain("call");
      const i = inlineCalls(g);
      expect(ops(i)).not.toContain("call");
      expectSameValues(rng, g, i);
    }));

  it("optimize shrinks a traced training step and keeps its values", () =>
    withSeed((rng) => {
      const loss = (w: Tensor, x: Tensor) => T(x).matmul(T(w)).tanh().mul(1).add(0).sum();
      const g = trace((w: Tensor, x: Tensor) => valueAndGrad(loss)(w, x), [spec([4, 3]), spec([5, 4])]).graph;
      const o = optimize(g);
      expect(o.nodes.length).toBeLessThan(g.nodes.length);
      expectSameValues(rng, g, o);
    }));
});
