// Tracing: pytrees in and out, input names from paths, the printed graph, hash-consing,
// named dimensions, and the errors for tensors used outside their trace.
import { describe, expect, it } from "vitest";
import {
  HostTensor,
  ShapeError,
  TraceError,
  evaluate,
  flatten,
  grad,
  hostTensor,
  run,
  spec,
  specsOf,
  trace,
  unflatten,
  type Tensor,
} from "@dorafuse/core";
import { expectClose, expectEqual } from "./support/numeric.js";
import { withSeed } from "./support/random.js";
import { randomHost } from "./support/frontend-check.js";

type W = Tensor<number[], "f32">;

describe("pytrees", () => {
  it("flatten orders object keys (sorted) and array items; unflatten rebuilds statics too", () => {
    const isNum = (v: unknown): v is number => typeof v === "number";
    const tree = { z: [1, { b: 2, a: 3 }], a: 4, name: "n", none: null };
    const [leaves, def] = flatten(tree, isNum);
    expect(leaves).toEqual([4, 1, 3, 2]);
    expect(unflatten(def, leaves.map((x) => x * 10))).toEqual({ z: [10, { b: 20, a: 30 }], a: 40, name: "n", none: null });
    expect(() => unflatten(def, [1, 2, 3])).toThrow(TraceError);
  });

  it("two trees with the same keys in different order flatten alike", () => {
    const isStr = (v: unknown): v is string => typeof v === "string";
    expect(flatten({ a: "1", b: { c: "2", d: "3" } }, isStr)[0]).toEqual(flatten({ b: { d: "3", c: "2" }, a: "1" }, isStr)[0]);
  });

  it("rejects values that are neither containers, leaves nor plain statics", () => {
    expect(() => flatten({ m: new Map() }, (v): v is never => false)).toThrow(/pytree: unsupported value at m: an instance of Map/);
  });
});

describe("trace", () => {
  it("names inputs by pytree path and prints one line per node", () => {
    const t = trace((p, x) => x.matmul(p.layers[0]!.w.mT()).add(p.layers[0]!.b).sum(-1), [{ layers: [{ w: spec([3, 4]), b: spec([3]) }] }, spec(["batch", 4])], {
      dims: { batch: 2 },
      names: ["params", "x"],
    });
    expect(t.inputs.map((i) => i.path)).toEqual(["params.layers[0].b", "params.layers[0].w", "x"]);
    expect(t.inputs.map((i) => i.shape)).toEqual([[3], [3, 4], [2, 4]]);
    const text = t.print().split("\n");
    expect(text[0]).toBe('graph(%0:f32[3] "params.layers[0].b", %1:f32[3,4] "params.layers[0].w", %2:f32[2,4] "x")');
    expect(text).toContain("  %3:f32[4,3] = transpose[perm=[1,0]] %1");
    expect(text).toContain("  %4:f32[2,3] = matmul %2 %3");
    expect(text.at(-1)).toMatch(/^ {2}return %\d+$/);
    expect(t.nodeCount).toBe(text.length - 2 + t.inputs.length);
  });

  it("hash-conses: the same op on the same inputs is one node", () => {
    const t = trace((x: W, y: W) => x.add(y).mul(x.add(y)).add(x.add(y).mul(x.add(y))), [spec([4]), spec([4])]);
    expect(t.graph.nodes.filter((n) => n.op === "add")).toHaveLength(2);
    expect(t.graph.nodes.filter((n) => n.op === "mul")).toHaveLength(1);
  });

  it("returns pytrees with static leaves; run gives host tensors in the same structure", () =>
    withSeed((rng) => {
      const t = trace((a, b) => ({ sum: a.add(b), parts: [a.mul(2), 5, "tag"] as const }), [spec([2, 2]), spec([2])]);
      expect(t.outputs.map((o) => o.path)).toEqual(["out.parts[0]", "out.sum"]);
      const a = randomHost(rng, [2, 2]);
      const b = randomHost(rng, [2]);
      const out = run(t, [a, b] as never) as { sum: HostTensor; parts: [HostTensor, number, string] };
      expect(out.parts[1]).toBe(5);
      expect(out.parts[2]).toBe("tag");
      expectClose(out.parts[0].data, a.data.map((v) => 2 * v), 0);
      expectClose(out.sum.data, a.data.map((v, i) => v + b.data[i % 2]!), 1e-15);
    }));

  it("run checks the shapes and dtypes of host inputs", () => {
    const t = trace((x) => x.sum(), [spec([3], "f32")], { names: ["x"] });
    expect(() => run(t, [hostTensor([4], [1, 2, 3, 4])] as never)).toThrow(ShapeError);
    expect(() => run(t, [hostTensor([3], [1, 2, 3], "i32")] as never)).toThrow(/x must be f32\[3\], found i32\[3\]/);
  });

  it("the f32 mode rounds like the device, the default f64 mode does not", () => {
    const x = hostTensor([1], [1]);
    const t = trace((v) => v.div(3), specsOf([x]));
    const exact = run(t, [x]).data[0]!;
    const rounded = run(t, [x], { mode: "f32" }).data[0]!;
    expect(exact).toBe(1 / 3);
    expect(rounded).toBe(Math.fround(1 / 3));
  });

  it("records the user's call sites on nodes when asked", () => {
    const t = trace((x: W) => x.exp(), [spec([2])], { sites: true });
    const exp = t.graph.nodes.find((n) => n.op === "exp")!;
    expect(exp.site).toMatch(/packages\/core\/test\/trace\.test\.ts:\d+:\d+$/);
    expect(t.print({ sites: true })).toContain("# packages/core/test/trace.test.ts:");
  });

  it("evaluate traces on the host tensors' shapes and runs", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [3, 2]);
      const r = evaluate((v) => v.mul(v).sum(0), [x]);
      expect(r.shape).toEqual([2]);
      expectClose(r.data, [0, 1].map((j) => [0, 1, 2].reduce((s, i) => s + x.data[i * 2 + j]! ** 2, 0)), 1e-15);
    }));
});

describe("tensors outside their trace", () => {
  it("ops without an active trace say how to get one", () => {
    let leaked: W | undefined;
    trace((x: W) => ((leaked = x), x.neg()), [spec([2])]);
    expect(() => leaked!.neg()).toThrow(/no active trace/);
  });

  it("a tensor leaked from one trace cannot be used in another", () => {
    let leaked: W | undefined;
    trace((x: W) => ((leaked = x), x.neg()), [spec([2])]);
    expect(() => trace((y: W) => y.add(leaked!), [spec([2])])).toThrow(/finished trace/);
  });

  it("trace does not close over tensors of an enclosing trace; grad does", () => {
    expect(() => trace((x: W) => (trace((y: W) => y.add(x), [spec([2])]), x), [spec([2])])).toThrow(/enclosing trace.*pass it as an argument/);
    const g = evaluate((x: W, c: W) => grad((y: W) => y.mul(c).sum())(x), [hostTensor([2], [1, 2]), hostTensor([2], [3, 5])] as never) as unknown as HostTensor;
    expectEqual(g.data, [3, 5]);
  });
});
