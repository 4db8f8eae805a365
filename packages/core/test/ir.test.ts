import { describe, expect, it } from "vitest";
import {
  GraphBuilder,
  ShapeError,
  TraceError,
  buildGraph,
  graphRef,
  inline,
  interpret,
  printGraph,
  printNode,
  type Node,
} from "@dorafuse/core";
import { makeGraph } from "./support/graph.js";
import { expectClose } from "./support/numeric.js";
import { randomArray, withSeed } from "./support/random.js";

describe("GraphBuilder", () => {
  it("hash-conses equal (op, inputs, attrs) into one node and keeps different attrs apart", () => {
    const b = new GraphBuilder();
    const x = b.input("x", [2, 3], "f32");
    const e1 = b.emit("exp", [x]);
    const e2 = b.emit("exp", [x]);
    expect(e2).toBe(e1);
    const s1 = b.emit("reduceSum", [x], { axes: [0, 1] });
    const s2 = b.emit("reduceSum", [x], { axes: [0, 1] });
    const s3 = b.emit("reduceSum", [x], { axes: [1] });
    expect(s2).toBe(s1);
    expect(s3).not.toBe(s1);
    // attribute key order does not matter; -0 and 0 are different constants
    const c1 = b.emit("constant", [], { value: 0, dtype: "f32" });
    const c2 = b.emit("constant", [], { dtype: "f32", value: 0 });
    const c3 = b.emit("constant", [], { value: -0, dtype: "f32" });
    expect(c2).toBe(c1);
    expect(c3).not.toBe(c1);
  });

  it("never merges inputs, even with equal names", () => {
    const b = new GraphBuilder();
    const a = b.input("x", [2], "f32");
    const c = b.input("x", [2], "f32");
    expect(a).not.toBe(c);
    expect(b.emit("add", [a, c])).not.toBe(b.emit("add", [c, a]));
  });

  it("gives node ids that are unique across builders and increase in creation order", () => {
    const b1 = new GraphBuilder();
    const b2 = new GraphBuilder();
    const x1 = b1.input("x", [2], "f32");
    const x2 = b2.input("x", [2], "f32");
    const y1 = b1.emit("neg", [x1]);
    const y2 = b2.emit("neg", [x2]);
    const ids = [x1.id, x2.id, y1.id, y2.id];
    expect(new Set(ids).size).toBe(4);
    expect(ids).toEqual([...ids].sort((p, q) => p - q));
  });

  it("freezes nodes", () => {
    const b = new GraphBuilder();
    const x = b.input("x", [2], "f32");
    expect(Object.isFrozen(x)).toBe(true);
    expect(Object.isFrozen(b.emit("exp", [x]).inputs)).toBe(true);
  });

  it("builds only what the outputs reach, in topological order", () => {
    const b = new GraphBuilder();
    const x = b.input("x", [3], "f32");
    const y = b.input("y", [3], "f32");
    const dead = b.emit("sin", [x]);
    const e = b.emit("exp", [x]);
    const out = b.emit("mul", [e, b.emit("log", [e])]);
    const g = b.build([out]);
    expect(g.nodes).not.toContain(dead);
    expect(g.nodes).not.toContain(y);
    expect(g.inputs).toEqual([x]);
    const pos = new Map(g.nodes.map((n, i) => [n, i]));
    for (const n of g.nodes) for (const i of n.inputs) expect(pos.get(i)!).toBeLessThan(pos.get(n)!);
  });

  it("keeps listed inputs that are unused, and rejects outputs that reach unlisted inputs", () => {
    const b = new GraphBuilder();
    const x = b.input("x", [3], "f32");
    const y = b.input("y", [3], "f32");
    const out = b.emit("exp", [x]);
    const g = b.build([out], [y, x]);
    expect(g.inputs).toEqual([y, x]);
    expect(g.nodes).toContain(y);
    expect(() => buildGraph([out], [y])).toThrow(TraceError);
    expect(() => buildGraph([out], [y])).toThrow(/"x"/);
  });

  it("names op, shapes and call site in shape errors", () => {
    const b = new GraphBuilder();
    const a = b.input("a", [4, 3], "f32");
    const w = b.input("w", [5, 2], "f32");
    let err: unknown;
    try {
      b.emit("matmul", [a, w], {}, "model.ts:12:7");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as ShapeError).message).toBe("matmul: inner dimensions differ: a is [4,3], b is [5,2] (3 ≠ 5)\n    at model.ts:12:7");
    expect((err as ShapeError).op).toBe("matmul");
    expect((err as ShapeError).site).toBe("model.ts:12:7");
    expect(() => b.emit("add", [a], {}, "m.ts:1")).toThrow(/add: expects 2 inputs, found 1 \(f32\[4,3\]\)\n    at m\.ts:1/);
    expect(() => b.emit("nosuchop", [a])).toThrow(/unknown primitive "nosuchop"/);
  });
});

describe("printGraph", () => {
  it("prints one line per node with local numbers, types and attrs", () => {
    const g = makeGraph(
      [
        ["x", [4, 3]],
        ["w", [3, 8]],
      ],
      (b, x, w) => b.emit("reduceSum", [b.emit("matmul", [x!, w!])], { axes: [1] }),
    );
    expect(printGraph(g)).toBe(
      [
        'graph(%0:f32[4,3] "x", %1:f32[3,8] "w")',
        "  %2:f32[4,8] = matmul %0 %1",
        "  %3:f32[4] = reduceSum[axes=[1]] %2",
        "  return %3",
      ].join("\n"),
    );
  });

  it("prints call bodies indented under the call, and sites on request", () => {
    const body = makeGraph([["u", [2]]], (b, u) => b.emit("exp", [u!]));
    const b = new GraphBuilder();
    const x = b.input("x", [2], "f32");
    const c = b.emit("call", [x], { body: graphRef(body), mode: "checkpoint" }, "net.ts:3");
    const text = printGraph(b.build([c]), { sites: true });
    expect(text).toContain(`%1:f32[2] = call[body=<graph ${graphRef(body).fingerprint}>, mode=checkpoint] %0  # net.ts:3`);
    expect(text).toContain('      graph(%0:f32[2] "u")');
    expect(text).toContain("        %1:f32[2] = exp %0");
    expect(printNode(c)).toMatch(new RegExp(`^%${c.id}:f32\\[2\\] = call\\[`));
  });
});

describe("graphRef", () => {
  it("gives equal fingerprints to equal graphs and different ones otherwise", () => {
    const f = (op: string) => makeGraph([["u", [2, 2]]], (b, u) => b.emit(op, [u!]));
    expect(graphRef(f("exp")).fingerprint).toBe(graphRef(f("exp")).fingerprint);
    expect(graphRef(f("exp")).fingerprint).not.toBe(graphRef(f("log")).fingerprint);
  });
});

describe("inline", () => {
  it("re-emits a graph on another builder with its inputs replaced, hash-consing with what is there", () =>
    withSeed((rng) => {
      const g = makeGraph(
        [
          ["p", [3]],
          ["q", [3]],
        ],
        (b, p, q) => [b.emit("mul", [b.emit("exp", [p!]), q!]), b.emit("exp", [p!])],
      );
      const b = new GraphBuilder();
      const x = b.input("x", [3], "f32");
      const ex = b.emit("exp", [x]);
      const [o1, o2] = inline(g, b, [x, ex]);
      expect(o2).toBe(ex); // exp(x) already existed on b
      expect(o1!.inputs).toEqual([ex, ex]);
      const xv = randomArray(rng, 3);
      const [v] = interpret(b.build([o1!]), [xv]);
      expectClose(v!, xv.map((t) => Math.exp(t) * Math.exp(t)), 1e-15);
    }));

  it("checks argument shapes and dtypes", () => {
    const g = makeGraph([["p", [3]]], (b, p) => b.emit("neg", [p!]));
    const b = new GraphBuilder();
    const bad: Node = b.input("x", [4], "f32");
    expect(() => inline(g, b, [bad])).toThrow(/argument 0 \("p"\) must be f32\[3\], found f32\[4\]/);
    expect(() => inline(g, b, [])).toThrow(/takes 1 inputs, found 0/);
  });
});
