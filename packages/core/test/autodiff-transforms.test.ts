// vjpGraph as a transform: its signature, second derivatives (vjp of vjp) against finite
// differences of the gradient, checkpoint and customVjp call nodes, and custom primitives.
import { describe, expect, it } from "vitest";
import {
  GraphBuilder,
  TraceError,
  checkpointCall,
  customVjpCall,
  full,
  inline,
  interpret,
  printGraph,
  registerPrimitive,
  vjpGraph,
  type Graph,
  type Node,
} from "@dorafuse/core";
import { checkVjp, makeGraph } from "./support/graph.js";
import { expectClose, expectEqual, size } from "./support/numeric.js";
import { randomArray, randomInts, withSeed } from "./support/random.js";

describe("vjpGraph", () => {
  it("takes primal inputs then one cotangent per output, and returns outputs then gradients", () => {
    const g = makeGraph(
      [
        ["x", [3]],
        ["y", [2]],
        ["k", [3], "i32"],
      ],
      (b, x, y, k) => [b.emit("exp", [x!]), b.emit("reduceSum", [b.emit("cast", [k!], { dtype: "f32" })], { axes: [0] })],
    );
    const v = vjpGraph(g, [1, 0, 2]);
    expect(v.inputs.map((n) => `${String(n.attrs.name)}:${n.dtype}[${n.shape}]`)).toEqual([
      "x:f32[3]",
      "y:f32[2]",
      "k:i32[3]",
      "ct0:f32[3]",
      "ct1:f32[]",
    ]);
    const outs = interpret(v, [[0, 1, 2], [5, 6], [1, 2, 3], [1, 1, 1], [1]]);
    expect(outs.length).toBe(5);
    expectEqual(outs[2]!, [0, 0], "y is not reached: zeros");
    expectClose(outs[3]!, [1, Math.E, Math.exp(2)], 1e-15, "dx");
    expectEqual(outs[4]!, [0, 0, 0], "an integer input gets zeros");
    expect(() => vjpGraph(g, [3])).toThrow("vjpGraph: wrt index 3 is out of range for a graph with 3 inputs");
  });

  it("sums cotangents over every use of a node and every output it feeds", () =>
    withSeed((rng) => {
      const g = makeGraph([["x", [4]]], (b, x) => {
        const s = b.emit("sin", [x!]);
        return [b.emit("mul", [s, s]), s, b.emit("mul", [s, x!])];
      });
      checkVjp(g, [randomArray(rng, 4)], [0], rng);
    }));

  it("drops the parts of the forward the gradient does not need", () => {
    const g = makeGraph(
      [
        ["x", [3]],
        ["w", [3]],
      ],
      (b, x, w) => b.emit("mul", [b.emit("exp", [x!]), b.emit("cos", [w!])]),
    );
    const ops = vjpGraph(g, [1]).nodes.map((n) => n.op);
    expect(ops).toContain("sin"); // d cos
    expect(ops.filter((o) => o === "exp").length).toBe(1);
    expect(vjpGraph(g, [0]).nodes.map((n) => n.op)).not.toContain("sin");
  });
});

/** The gradient graph of a scalar function, as a function of its inputs (ct fixed to 1 by the caller). */
const gradOf = (g: Graph, wrt: number[]): Graph => vjpGraph(g, wrt);

describe("second derivatives", () => {
  const fns: [string, number[], (b: GraphBuilder, x: Node) => Node][] = [
    ["Σ tanh(x)·x²", [5], (b, x) => b.emit("reduceSum", [b.emit("mul", [b.emit("tanh", [x]), b.emit("mul", [x, x])])], { axes: [0] })],
    [
      "log Σ exp(x) over two axes",
      [2, 3],
      (b, x) => b.emit("log", [b.emit("reduceSum", [b.emit("exp", [x])], { axes: [0, 1] })]),
    ],
    [
      "Σ (W·x)² / ‖x‖ with W = sin(x)ᵀ",
      [3, 2],
      (b, x) => {
        const w = b.emit("transpose", [b.emit("sin", [x])], { perm: [1, 0] });
        const y = b.emit("matmul", [x, w]);
        const n = b.emit("sqrt", [b.emit("reduceSum", [b.emit("mul", [x, x])], { axes: [0, 1] })]);
        const sq = b.emit("reduceSum", [b.emit("mul", [y, y])], { axes: [0, 1] });
        return b.emit("div", [sq, n]);
      },
    ],
    [
      "Σ erf(x)·rsqrt(x²+1) + pow(x², 1.5) over a broadcast",
      [4],
      (b, x) => {
        const x2 = b.emit("add", [b.emit("mul", [x, x]), full(b, 1, x)]);
        const t = b.emit("add", [b.emit("mul", [b.emit("erf", [x]), b.emit("rsqrt", [x2])]), b.emit("pow", [x2, full(b, 1.5, x)])]);
        const bc = b.emit("broadcast", [t], { shape: [3, 4] });
        return b.emit("reduceMax", [b.emit("reduceSum", [bc], { axes: [1] })], { axes: [0] });
      },
    ],
    [
      "gather, slice and concat",
      [5],
      (b, x) => {
        const idx = b.emit("iota", [], { shape: [3], axis: 0 });
        const gth = b.emit("gather", [b.emit("exp", [x]), idx], { axis: 0 });
        const cat = b.emit("concat", [gth, b.emit("slice", [x], { start: [2], end: [5] })], { axis: 0 });
        return b.emit("reduceSum", [b.emit("mul", [cat, b.emit("sin", [cat])])], { axes: [0] });
      },
    ],
  ];
  for (const [name, shape, f] of fns) {
    it(`vjp of vjp of ${name} matches finite differences of the gradient`, () =>
      withSeed((rng) => {
        const g = makeGraph([["x", shape]], (b, x) => f(b, x!));
        const x = randomArray(rng, size(shape), { lo: 0.2, hi: 1.2 });
        const dg = gradOf(g, [0]);
        checkVjp(g, [x], [0], rng); // first order
        checkVjp(dg, [x, [1]], [0], rng, 1e-5); // second order: outputs (f, ∇f) against FD of ∇f
      }));
  }

  it("third derivatives work too (x ↦ Σ sin(x)·x)", () =>
    withSeed((rng) => {
      const g = makeGraph([["x", [3]]], (b, x) => b.emit("reduceSum", [b.emit("mul", [b.emit("sin", [x!]), x!])], { axes: [0] }));
      const d2 = vjpGraph(vjpGraph(g, [0]), [0]);
      checkVjp(d2, [randomArray(rng, 3), [1], randomArray(rng, 1), randomArray(rng, 3)], [0], rng, 1e-5);
    }));
});

/** y = Σ (body(x, w))² where body = sin(x·w) · exp(w) — as a plain graph, a checkpoint call, or a customVjp call. */
function bodyGraph(): Graph {
  return makeGraph(
    [
      ["u", [2, 3]],
      ["v", [3, 3]],
    ],
    (b, u, v) => b.emit("mul", [b.emit("sin", [b.emit("matmul", [u!, v!])]), b.emit("broadcast", [b.emit("reduceSum", [b.emit("exp", [v!])], { axes: [0] })], { shape: [2, 3] })]),
  );
}

function outer(use: (b: GraphBuilder, x: Node, w: Node) => Node): Graph {
  return makeGraph(
    [
      ["x", [2, 3]],
      ["w", [3, 3]],
    ],
    (b, x, w) => {
      const y = use(b, x!, w!);
      return b.emit("reduceSum", [b.emit("mul", [y, y])], { axes: [0, 1] });
    },
  );
}

describe("checkpoint", () => {
  it("gives the same values and gradients as the plain graph, and matches finite differences", () =>
    withSeed((rng) => {
      const body = bodyGraph();
      const plain = outer((b, x, w) => inline(body, b, [x, w])[0]!);
      const ckpt = outer((b, x, w) => checkpointCall(b, body, [x, w]));
      const inputs = [randomArray(rng, 6), randomArray(rng, 9), [1]];
      const p = interpret(vjpGraph(plain, [0, 1]), inputs);
      const c = interpret(vjpGraph(ckpt, [0, 1]), inputs);
      p.forEach((v, k) => expectClose(c[k]!, v, 1e-14, `output ${k}`));
      checkVjp(ckpt, inputs.slice(0, 2), [0, 1], rng);
    }));

  it("recomputes the body in the backward as separate `remat` nodes", () => {
    const body = bodyGraph();
    const v = vjpGraph(outer((b, x, w) => checkpointCall(b, body, [x, w])), [0, 1]);
    const text = printGraph(v);
    expect(v.nodes.some((n) => n.op === "call")).toBe(true); // the forward keeps the call
    const remats = v.nodes.filter((n) => n.attrs.remat === 1);
    expect(remats.map((n) => n.op)).toContain("matmul");
    expect(remats.map((n) => n.op)).toContain("sin");
    expect(text).toMatch(/matmul\[remat=1\]/);
  });

  it("nests: a checkpoint inside a checkpoint, differentiated twice", () =>
    withSeed((rng) => {
      const inner = makeGraph([["u", [3]]], (b, u) => b.emit("tanh", [b.emit("mul", [u!, u!])]));
      const mid = makeGraph([["u", [3]]], (b, u) => b.emit("exp", [checkpointCall(b, inner, [b.emit("sin", [u!])])]));
      const g = makeGraph([["x", [3]]], (b, x) => b.emit("reduceSum", [checkpointCall(b, mid, [x!])], { axes: [0] }));
      const x = randomArray(rng, 3);
      checkVjp(g, [x], [0], rng);
      checkVjp(vjpGraph(g, [0]), [x, [1]], [0], rng, 1e-5);
      expect(vjpGraph(g, [0]).nodes.some((n) => n.attrs.remat === 2)).toBe(true);
    }));
});

describe("customVjp", () => {
  it("with the true derivative as bwd gives the plain graph's gradients", () =>
    withSeed((rng) => {
      const fwd = makeGraph([["u", [4]]], (b, u) => b.emit("exp", [u!]));
      const bwd = makeGraph(
        [
          ["u", [4]],
          ["ct", [4]],
        ],
        (b, u, ct) => [b.emit("mul", [ct!, b.emit("exp", [u!])])],
      );
      const plain = makeGraph([["x", [4]]], (b, x) => b.emit("sin", [b.emit("exp", [x!])]));
      const custom = makeGraph([["x", [4]]], (b, x) => b.emit("sin", [customVjpCall(b, fwd, bwd, [x!])]));
      const x = randomArray(rng, 4);
      const ct = randomArray(rng, 4);
      const p = interpret(vjpGraph(plain, [0]), [x, ct]);
      const c = interpret(vjpGraph(custom, [0]), [x, ct]);
      p.forEach((v, k) => expectClose(c[k]!, v, 1e-15, `output ${k}`));
      checkVjp(vjpGraph(custom, [0]), [x, ct], [0], rng, 1e-5); // bwd is itself differentiable
    }));

  it("uses bwd, not the derivative of fwd (a straight-through clip)", () =>
    withSeed((rng) => {
      const fwd = makeGraph([["u", [5]]], (b, u) => b.emit("floor", [u!]));
      const bwd = makeGraph(
        [
          ["u", [5]],
          ["ct", [5]],
        ],
        (b, _u, ct) => [ct!],
      );
      const g = makeGraph([["x", [5]]], (b, x) => customVjpCall(b, fwd, bwd, [x!]));
      const ct = randomArray(rng, 5);
      const [y, gx] = interpret(vjpGraph(g, [0]), [[0.5, 1.5, -0.2, 2.9, 3], ct]);
      expectEqual(y!, [0, 1, -1, 2, 3]);
      expectEqual(gx!, ct);
    }));

  it("gives integer inputs no gradient and checks bwd's signature", () => {
    const fwd = makeGraph(
      [
        ["u", [3]],
        ["k", [3], "i32"],
      ],
      (b, u, k) => b.emit("mul", [u!, b.emit("cast", [k!], { dtype: "f32" })]),
    );
    const bwd = makeGraph(
      [
        ["u", [3]],
        ["k", [3], "i32"],
        ["ct", [3]],
      ],
      (b, _u, k, ct) => [b.emit("mul", [ct!, b.emit("cast", [k!], { dtype: "f32" })]), k!],
    );
    const g = makeGraph(
      [
        ["x", [3]],
        ["k", [3], "i32"],
      ],
      (b, x, k) => customVjpCall(b, fwd, bwd, [x!, k!]),
    );
    const [, gx, gk] = interpret(vjpGraph(g, [0, 1]), [[1, 2, 3], [4, 5, 6], [1, 1, 2]]);
    expectEqual(gx!, [4, 5, 12]);
    expectEqual(gk!, [0, 0, 0]);
    const wrong = makeGraph([["u", [3]], ["k", [3], "i32"], ["ct", [3]]], (b, u) => [u!]);
    const b = new GraphBuilder();
    expect(() => customVjpCall(b, fwd, wrong, [b.input("x", [3], "f32"), b.input("k", [3], "i32")])).toThrow(
      "call: bwd must return one cotangent per input (f32[3], i32[3]), found (f32[3])",
    );
  });
});

describe("custom primitives", () => {
  registerPrimitive(
    {
      name: "test.softplus",
      kind: "custom",
      arity: 1,
      infer: ([x]) => ({ shape: [...x!.shape], dtype: x!.dtype }),
      evaluate: ([x]) => x!.map((v) => Math.log1p(Math.exp(v))),
      // d softplus = sigmoid = 1 / (1 + e^{−x})
      vjp: (ct, node, b) => {
        const x = node.inputs[0]!;
        const one = full(b, 1, x);
        return [b.emit("div", [ct, b.emit("add", [one, b.emit("exp", [b.emit("neg", [x])])])])];
      },
    },
    true,
  );
  registerPrimitive(
    {
      name: "test.noGrad",
      kind: "custom",
      arity: 1,
      infer: ([x]) => ({ shape: [...x!.shape], dtype: x!.dtype }),
      evaluate: ([x]) => x!.slice(),
    },
    true,
  );

  it("a registered primitive is traced, interpreted and differentiated like a built-in", () =>
    withSeed((rng) => {
      const g = makeGraph([["x", [6]]], (b, x) => b.emit("test.softplus", [b.emit("mul", [x!, x!])]));
      const x = randomArray(rng, 6, { lo: -2, hi: 2 });
      expectClose(interpret(g, [x])[0]!, x.map((v) => Math.log(1 + Math.exp(v * v))), 1e-15);
      checkVjp(g, [x], [0], rng);
      checkVjp(vjpGraph(g, [0]), [x, randomArray(rng, 6)], [0], rng, 1e-5);
    }));

  it("a gradient through a primitive without a VJP rule is a TraceError naming it", () => {
    const g = makeGraph([["x", [2]]], (b, x) => b.emit("exp", [b.emit("test.noGrad", [x!])]));
    expect(() => vjpGraph(g, [0])).toThrow(TraceError);
    expect(() => vjpGraph(g, [0])).toThrow(/primitive "test.noGrad" has no VJP rule, but a gradient flows through\n {4}%\d+:f32\[2\] = test.noGrad %\d+/);
  });

  it("a built-in name cannot be registered, and re-registering a custom one needs replace", () => {
    const make = (name: string) => ({ name, kind: "custom" as const, infer: () => ({ shape: [], dtype: "f32" as const }), evaluate: () => new Float64Array(1) });
    expect(() => registerPrimitive(make("add"))).toThrow('registerPrimitive: "add" is a built-in primitive');
    registerPrimitive(make("test.twice"));
    expect(() => registerPrimitive(make("test.twice"))).toThrow('registerPrimitive: "test.twice" is already registered');
    expect(() => registerPrimitive(make("test.twice"), true)).not.toThrow();
  });

  it("gather of integer tables and random bits carry no gradient", () =>
    withSeed((rng) => {
      const g = makeGraph(
        [
          ["x", [4]],
          ["key", [2], "u32"],
        ],
        (b, x, key) => {
          const bits = b.emit("cast", [b.emit("randomBits", [key!], { shape: [4] })], { dtype: "f32" });
          return b.emit("mul", [x!, bits]);
        },
      );
      checkVjp(g, [randomArray(rng, 4), randomInts(rng, 2, 0, 1000)], [0], rng);
    }));
});
