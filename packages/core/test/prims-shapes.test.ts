// Shape and dtype rules of the primitives: results, error messages, and properties of the
// broadcast and reshape rules (fast-check).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  DTypeError,
  GraphBuilder,
  ShapeError,
  broadcastShapes,
  broadcastsTo,
  interpret,
  listPrimitives,
  resolveReshape,
  type DType,
} from "@dorafuse/core";
import { ravel, size, unravel } from "./support/numeric.js";

const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 5 });

/** A shape broadcastable to `t`: some leading axes dropped, some dims replaced by 1. */
const shrunkArb = (t: number[]) =>
  fc
    .tuple(fc.integer({ min: 0, max: t.length }), fc.array(fc.boolean(), { minLength: t.length, maxLength: t.length }))
    .map(([drop, ones]) => t.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));

describe("broadcast shape rule (properties)", () => {
  it("broadcasting two shrunk copies of a shape gives back a shape both broadcast to, symmetrically", () => {
    fc.assert(
      fc.property(
        shapeArb.chain((t) => fc.tuple(fc.constant(t), shrunkArb(t), shrunkArb(t))),
        ([t, a, b]) => {
          const r = broadcastShapes("add", a, b);
          expect(broadcastShapes("add", b, a)).toEqual(r);
          expect(r.length).toBe(Math.max(a.length, b.length));
          expect(broadcastsTo(a, r) && broadcastsTo(b, r) && broadcastsTo(r, t)).toBe(true);
          // each result dim is the larger of the two aligned dims
          r.forEach((d, i) => {
            const da = a[a.length - r.length + i] ?? 1;
            const db = b[b.length - r.length + i] ?? 1;
            expect(d).toBe(Math.max(da, db));
          });
        },
      ),
    );
  });

  it("is the identity on equal shapes and with a scalar", () => {
    fc.assert(
      fc.property(shapeArb, (s) => {
        expect(broadcastShapes("add", s, s)).toEqual(s);
        expect(broadcastShapes("add", s, [])).toEqual(s);
      }),
    );
  });

  it("rejects two different dims that are both not 1, naming both shapes and the axis", () => {
    fc.assert(
      fc.property(shapeArb, fc.integer({ min: 2, max: 5 }), fc.integer({ min: 2, max: 5 }), (s, p, q) => {
        fc.pre(p !== q);
        const a = [...s, p];
        const b = [q];
        expect(() => broadcastShapes("add", a, b)).toThrow(ShapeError);
        expect(() => broadcastShapes("add", a, b)).toThrow(`add: shapes do not broadcast: [${a.join(",")}] and [${q}] (axis -1: ${p} ≠ ${q})`);
      }),
    );
  });

  it("the broadcast primitive copies each element to every position it stretches over", () => {
    fc.assert(
      fc.property(
        shapeArb.chain((t) => fc.tuple(fc.constant(t), shrunkArb(t))),
        ([t, a]) => {
          const b = new GraphBuilder();
          const x = b.input("x", a, "f32");
          const y = b.emit("broadcast", [x], { shape: t });
          expect(y.shape).toEqual(t);
          const xv = Float64Array.from({ length: size(a) }, (_, i) => i + 1);
          const [out] = interpret(b.build([y]), [xv]);
          for (let f = 0; f < size(t); f++) {
            const idx = unravel(f, t).slice(t.length - a.length).map((v, i) => (a[i] === 1 ? 0 : v));
            expect(out![f]).toBe(xv[ravel(idx, a)]);
          }
        },
      ),
    );
  });

  it("the broadcast primitive rejects targets the input does not broadcast to", () => {
    const b = new GraphBuilder();
    const x = b.input("x", [3, 2], "f32");
    expect(() => b.emit("broadcast", [x], { shape: [3, 4] }, "a.ts:1")).toThrow(
      "broadcast: cannot broadcast [3,2] to [3,4] (right-aligned, each dimension must be 1 or equal)\n    at a.ts:1",
    );
    expect(() => b.emit("broadcast", [x], { shape: [2] })).toThrow(ShapeError);
  });
});

/** A random factorization of `n` into up to `k` factors (with 1s), as a shape. */
const factorArb = (n: number) =>
  fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 5 }).map((picks) => {
    const out: number[] = [];
    let rest = n;
    for (const p of picks) {
      const divs = Array.from({ length: rest }, (_, i) => i + 1).filter((d) => rest % d === 0);
      const d = divs[p % divs.length]!;
      out.push(d);
      rest /= d;
    }
    out.push(rest);
    return out;
  });

describe("reshape shape rule (properties)", () => {
  it("reshapes to any shape with the same size, keeping row-major order, and back", () => {
    fc.assert(
      fc.property(
        shapeArb.chain((s) => fc.tuple(fc.constant(s), factorArb(size(s)))),
        ([s, t]) => {
          const b = new GraphBuilder();
          const x = b.input("x", s, "f32");
          const y = b.emit("reshape", [x], { shape: t });
          const z = b.emit("reshape", [y], { shape: s });
          expect(y.shape).toEqual(t);
          const xv = Float64Array.from({ length: size(s) }, (_, i) => i * 0.5);
          const [yv, zv] = interpret(b.build([y, z]), [xv]);
          expect([...yv!]).toEqual([...xv]);
          expect([...zv!]).toEqual([...xv]);
        },
      ),
    );
  });

  it("resolves one -1 to the missing factor and rejects sizes that do not match", () => {
    fc.assert(
      fc.property(
        shapeArb.chain((s) => fc.tuple(fc.constant(s), factorArb(size(s)), fc.nat())),
        ([s, t, k]) => {
          const hole = k % t.length;
          const withHole = t.map((d, i) => (i === hole ? -1 : d));
          expect(resolveReshape("reshape", s, withHole)).toEqual(t);
          const bigger = [...t.slice(0, -1), t[t.length - 1]! + 1];
          expect(() => resolveReshape("reshape", s, bigger)).toThrow(
            `reshape: cannot reshape [${s.join(",")}] (${size(s)} elements) to [${bigger.join(",")}] (${size(bigger)} elements)`,
          );
        },
      ),
    );
  });

  it("the reshape primitive rejects a size mismatch and two -1s", () => {
    const b = new GraphBuilder();
    const x = b.input("x", [2, 3], "f32");
    expect(() => b.emit("reshape", [x], { shape: [4, 2] }, "r.ts:9")).toThrow(
      "reshape: cannot reshape [2,3] (6 elements) to [4,2] (8 elements)\n    at r.ts:9",
    );
    expect(() => b.emit("reshape", [x], { shape: [-1, 6] })).toThrow(/target shape must be a list of non-negative integers/);
    expect(() => resolveReshape("reshape", [2, 3], [-1, -1])).toThrow(/at most one -1/);
  });
});

describe("shape rules", () => {
  const b = new GraphBuilder();
  const t = (shape: number[], dtype: DType = "f32") => b.input("t", shape, dtype);

  it("compute result shapes and dtypes", () => {
    const cases: [string, ReturnType<typeof t>[], object, number[], DType][] = [
      ["add", [t([2, 3]), t([2, 3])], {}, [2, 3], "f32"],
      ["lt", [t([2, 3]), t([2, 3])], {}, [2, 3], "bool"],
      ["where", [t([4], "bool"), t([4]), t([4])], {}, [4], "f32"],
      ["cast", [t([4])], { dtype: "i32" }, [4], "i32"],
      ["reduceSum", [t([2, 3, 4])], { axes: [0, 2] }, [3], "f32"],
      ["reduceMax", [t([2, 3, 4])], { axes: [-1] }, [2, 3], "f32"],
      ["matmul", [t([5, 2, 3]), t([5, 3, 7])], {}, [5, 2, 7], "f32"],
      ["transpose", [t([2, 3, 4])], { perm: [2, 0, 1] }, [4, 2, 3], "f32"],
      ["slice", [t([5, 6])], { start: [1, 0], end: [4, 6] }, [3, 6], "f32"],
      ["pad", [t([5, 6])], { low: [1, 0], high: [2, 3] }, [8, 9], "f32"],
      ["concat", [t([2, 3]), t([2, 1]), t([2, 4])], { axis: 1 }, [2, 8], "f32"],
      ["gather", [t([5, 6, 7]), t([2, 3], "i32")], { axis: 1 }, [5, 2, 3, 7], "f32"],
      ["scatterAdd", [t([2, 3], "i32"), t([5, 2, 3, 7])], { axis: 1, shape: [5, 6, 7] }, [5, 6, 7], "f32"],
      ["randomBits", [t([2], "u32")], { shape: [3, 4] }, [3, 4], "u32"],
      ["iota", [], { shape: [3, 4], axis: 1 }, [3, 4], "i32"],
      ["constant", [], { value: 2, dtype: "f16" }, [], "f16"],
    ];
    for (const [op, inputs, attrs, shape, dtype] of cases) {
      const n = b.emit(op, inputs, attrs as never);
      expect([op, n.shape, n.dtype]).toEqual([op, shape, dtype]);
    }
  });

  it("reject bad inputs with messages naming the op and the shapes", () => {
    const bad: [string, ReturnType<typeof t>[], object, string | RegExp][] = [
      ["add", [t([2, 3]), t([3, 2])], {}, "add: inputs must have identical shapes (insert broadcast first): a is [2,3], b is [3,2]"],
      ["matmul", [t([2, 3]), t([2, 3, 4])], {}, "matmul: batch dimensions differ: a is [2,3], b is [2,3,4] ([] ≠ [2]; broadcast them first)"],
      ["matmul", [t([3])], {}, /matmul: expects 2 inputs, found 1/],
      ["reduceSum", [t([2, 3])], { axes: [2] }, "reduceSum: axis 2 is out of range for shape [2,3]"],
      ["reduceSum", [t([2, 3])], { axes: [1, -1] }, "reduceSum: repeated axis in [1,-1] for shape [2,3]"],
      ["transpose", [t([2, 3])], { perm: [0, 0] }, "transpose: perm [0,0] is not a permutation of the axes of [2,3]"],
      ["slice", [t([5, 6])], { start: [0, 2], end: [5, 7] }, /slice: axis 1 range \[2, 7\) is not within \[0, 6\] for \[5,6\]/],
      ["pad", [t([5])], { low: [-1], high: [0] }, /pad: low \[-1\] and high \[0\] must be ≥ 0/],
      ["concat", [t([2, 3]), t([3, 3])], { axis: 1 }, "concat: inputs must agree on every axis but 1: [2,3], [3,3]"],
      ["scatterAdd", [t([2], "i32"), t([5, 3])], { axis: 0, shape: [4, 3] }, /updates must be \[2,3\] for target \[4,3\], indices \[2\], axis 0; found \[5,3\]/],
      ["randomBits", [t([3], "u32")], { shape: [2] }, "randomBits: key must be u32[2], found u32[3]"],
    ];
    for (const [op, inputs, attrs, msg] of bad) expect(() => b.emit(op, inputs, attrs as never), op).toThrow(msg);
  });

  it("reject dtypes an op does not accept", () => {
    const bad: [string, ReturnType<typeof t>[], object, string][] = [
      ["exp", [t([2], "i32")], {}, "exp: expects a float dtype (f32, f16), found i32"],
      ["neg", [t([2], "u32")], {}, "neg: expects a signed dtype (f32, f16, i32), found u32"],
      ["add", [t([2]), t([2], "f16")], {}, "add: inputs must have the same dtype (insert cast first): a is f32, b is f16"],
      ["add", [t([2], "bool"), t([2], "bool")], {}, "add: expects a numeric dtype (f32, f16, i32, u32), found bool"],
      ["and", [t([2]), t([2])], {}, "and: expects bool, found f32"],
      ["where", [t([2]), t([2]), t([2])], {}, "where: expects bool, found f32"],
      ["gather", [t([4]), t([2])], { axis: 0 }, "gather: indices must be i32 or u32, found f32"],
      ["matmul", [t([2, 2]), t([2, 2], "f16")], {}, "matmul: dtypes differ: a is f32, b is f16"],
    ];
    for (const [op, inputs, attrs, msg] of bad) {
      expect(() => b.emit(op, inputs, attrs as never), op).toThrow(DTypeError);
      expect(() => b.emit(op, inputs, attrs as never), op).toThrow(msg);
    }
  });

  it("every primitive has a shape rule, a float64 evaluator, and a VJP rule or takes no differentiable input", () => {
    const names = listPrimitives().map((p) => p.name);
    expect(names.length).toBeGreaterThanOrEqual(45);
    for (const p of listPrimitives()) {
      expect(typeof p.infer, p.name).toBe("function");
      expect(typeof p.evaluate, p.name).toBe("function");
      // call's rule is the vjp transform applied to its body (autodiff/vjp.ts, callVjp)
      if (p.kind !== "source" && p.kind !== "call") expect(typeof p.vjp, p.name).toBe("function");
      if (p.kind === "elementwise") expect(typeof p.wgsl, p.name).toBe("function");
    }
  });
});
