// The interpreter's reductions, matmul, layout, slicing, indexing and source primitives against
// naive multi-index loops written here, on random shapes including size-1 dims.
import { describe, expect, it } from "vitest";
import { GraphBuilder, graphRef, interpret } from "@dorafuse/core";
import { makeGraph } from "./support/graph.js";
import { expectClose, expectEqual, ravel, size, tabulate, unravel } from "./support/numeric.js";
import { randomArray, randomInts, randomShape, withSeed } from "./support/random.js";

describe("reductions", () => {
  for (const op of ["reduceSum", "reduceMax"] as const) {
    it(`${op} over random sets of axes (none, some, all) matches a naive loop`, () =>
      withSeed((rng) => {
        for (let trial = 0; trial < 6; trial++) {
          const shape = randomShape(rng, rng.int(1, 4));
          const axes = shape.map((_, i) => i).filter(() => rng.next() < 0.5);
          const x = randomArray(rng, size(shape));
          const [out] = interpret(makeGraph([["x", shape]], (b, xn) => b.emit(op, [xn!], { axes })), [x]);
          const outShape = shape.filter((_, i) => !axes.includes(i));
          const ref = new Float64Array(size(outShape)).fill(op === "reduceSum" ? 0 : -Infinity);
          for (let f = 0; f < x.length; f++) {
            const o = ravel(unravel(f, shape).filter((_, i) => !axes.includes(i)), outShape);
            ref[o] = op === "reduceSum" ? ref[o]! + x[f]! : Math.max(ref[o]!, x[f]!);
          }
          expectClose(out!, ref, 1e-14, `${op} [${shape}] axes [${axes}]`);
        }
      }));
  }

  it("reduceSum of i32 wraps modulo 2^32", () => {
    const [s] = interpret(makeGraph([["x", [3], "i32"]], (b, x) => b.emit("reduceSum", [x!], { axes: [0] })), [[2147483647, 2147483647, 5]]);
    expectEqual(s!, [Number(BigInt.asIntN(32, 2n * 2147483647n + 5n))]);
  });
});

describe("matmul", () => {
  it("matches a naive triple loop, with batch dims and size-1 dims", () =>
    withSeed((rng) => {
      for (let trial = 0; trial < 5; trial++) {
        const batch = randomShape(rng, rng.int(0, 2), 3);
        const [m, k, n] = [rng.int(1, 5), rng.int(1, 5), rng.int(1, 5)];
        const a = randomArray(rng, size(batch) * m * k);
        const c = randomArray(rng, size(batch) * k * n);
        const g = makeGraph(
          [
            ["a", [...batch, m, k]],
            ["b", [...batch, k, n]],
          ],
          (b, x, y) => b.emit("matmul", [x!, y!]),
        );
        const [out] = interpret(g, [a, c]);
        const ref = new Float64Array(size(batch) * m * n);
        for (let p = 0; p < size(batch); p++)
          for (let i = 0; i < m; i++)
            for (let j = 0; j < n; j++) {
              let s = 0;
              for (let l = 0; l < k; l++) s += a[p * m * k + i * k + l]! * c[p * k * n + l * n + j]!;
              ref[p * m * n + i * n + j] = s;
            }
        expectClose(out!, ref, 1e-14, `matmul [${batch}] ${m}x${k}x${n}`);
      }
    }));

  it("multiplies i32 matrices with wrapping", () => {
    const g = makeGraph(
      [
        ["a", [1, 2], "i32"],
        ["b", [2, 1], "i32"],
      ],
      (b, x, y) => b.emit("matmul", [x!, y!]),
    );
    const [out] = interpret(g, [
      [65536, 3],
      [65537, -4],
    ]);
    expectEqual(out!, [Number(BigInt.asIntN(32, 65536n * 65537n - 12n))]);
  });
});

describe("layout", () => {
  it("transpose moves element idx to perm-permuted position", () =>
    withSeed((rng) => {
      for (let trial = 0; trial < 6; trial++) {
        const shape = randomShape(rng, trial < 3 ? rng.int(1, 4) : rng.int(3, 4));
        // later trials rotate the axes: a perm that is not its own inverse
        const perm = trial < 3 ? rng.shuffle(shape.map((_, i) => i)) : shape.map((_, i) => (i + 1) % shape.length);
        const x = randomArray(rng, size(shape));
        const [out] = interpret(makeGraph([["x", shape]], (b, xn) => b.emit("transpose", [xn!], { perm })), [x]);
        const outShape = perm.map((p) => shape[p]!);
        const ref = tabulate(outShape, (o) => {
          const idx = new Array<number>(shape.length);
          perm.forEach((p, i) => (idx[p] = o[i]!));
          return x[ravel(idx, shape)]!;
        });
        expectEqual(out!, ref, `transpose [${shape}] perm [${perm}]`);
      }
    }));

  it("slice, pad and concat place elements at their offsets", () =>
    withSeed((rng) => {
      for (let trial = 0; trial < 4; trial++) {
        const shape = randomShape(rng, rng.int(1, 3), 5);
        const x = randomArray(rng, size(shape));
        const start = shape.map((d) => rng.int(0, d));
        const end = shape.map((d, i) => rng.int(start[i]!, d));
        const low = shape.map(() => rng.int(0, 2));
        const high = shape.map(() => rng.int(0, 2));
        const axis = rng.int(0, shape.length - 1);
        const other = shape.map((d, i) => (i === axis ? rng.int(1, 3) : d));
        const y = randomArray(rng, size(other));
        const g = makeGraph(
          [
            ["x", shape],
            ["y", other],
          ],
          (b, xn, yn) => [
            b.emit("slice", [xn!], { start, end }),
            b.emit("pad", [xn!], { low, high }),
            b.emit("concat", [xn!, yn!, xn!], { axis }),
          ],
        );
        const [s, p, c] = interpret(g, [x, y]);
        expectEqual(s!, tabulate(end.map((e, i) => e - start[i]!), (o) => x[ravel(o.map((v, i) => v + start[i]!), shape)]!), "slice");
        const padded = shape.map((d, i) => d + low[i]! + high[i]!);
        expectEqual(
          p!,
          tabulate(padded, (o) => {
            const src = o.map((v, i) => v - low[i]!);
            return src.every((v, i) => v >= 0 && v < shape[i]!) ? x[ravel(src, shape)]! : 0;
          }),
          "pad",
        );
        const cat = shape.map((d, i) => (i === axis ? 2 * d + other[axis]! : d));
        expectEqual(
          c!,
          tabulate(cat, (o) => {
            const v = o[axis]!;
            const d = shape[axis]!;
            const e = other[axis]!;
            if (v < d) return x[ravel(o, shape)]!;
            if (v < d + e) return y[ravel(o.map((w, i) => (i === axis ? w - d : w)), other)]!;
            return x[ravel(o.map((w, i) => (i === axis ? w - d - e : w)), shape)]!;
          }),
          "concat",
        );
      }
    }));

  it("reshape keeps row-major order and broadcast repeats along stretched dims", () =>
    withSeed((rng) => {
      const x = randomArray(rng, 6);
      const g = makeGraph([["x", [2, 3]]], (b, xn) => [
        b.emit("reshape", [xn!], { shape: [3, 1, 2] }),
        b.emit("broadcast", [b.emit("reshape", [xn!], { shape: [2, 1, 3] })], { shape: [4, 2, 2, 3] }),
      ]);
      const [r, bc] = interpret(g, [x]);
      expectEqual(r!, x);
      expectEqual(bc!, tabulate([4, 2, 2, 3], ([, i, , j]) => x[i! * 3 + j!]!));
    }));
});

describe("indexing", () => {
  it("gather picks rows along an axis, clamping out-of-range indices", () =>
    withSeed((rng) => {
      for (let trial = 0; trial < 4; trial++) {
        const shape = randomShape(rng, rng.int(1, 3), 5);
        const axis = rng.int(0, shape.length - 1);
        const n = shape[axis]!;
        const idxShape = randomShape(rng, rng.int(0, 2));
        const idx = randomInts(rng, size(idxShape), -2, n + 1);
        const x = randomArray(rng, size(shape));
        const g = makeGraph(
          [
            ["x", shape],
            ["i", idxShape, "i32"],
          ],
          (b, xn, i) => b.emit("gather", [xn!, i!], { axis }),
        );
        const [out] = interpret(g, [x, idx]);
        const outShape = [...shape.slice(0, axis), ...idxShape, ...shape.slice(axis + 1)];
        const r = idxShape.length;
        const ref = tabulate(outShape, (o) => {
          const j = idx[ravel(o.slice(axis, axis + r), idxShape)]!;
          const src = [...o.slice(0, axis), Math.min(n - 1, Math.max(0, j)), ...o.slice(axis + r)];
          return x[ravel(src, shape)]!;
        });
        expectEqual(out!, ref);
      }
    }));

  it("scatterAdd sums updates into zeros at the (clamped) indices", () =>
    withSeed((rng) => {
      for (let trial = 0; trial < 4; trial++) {
        const shape = randomShape(rng, rng.int(1, 3), 4);
        const axis = rng.int(0, shape.length - 1);
        const n = shape[axis]!;
        const idxShape = randomShape(rng, rng.int(1, 2), 5);
        const idx = randomInts(rng, size(idxShape), -1, n); // repeats and out-of-range on purpose
        const updShape = [...shape.slice(0, axis), ...idxShape, ...shape.slice(axis + 1)];
        const upd = randomArray(rng, size(updShape));
        const g = makeGraph(
          [
            ["i", idxShape, "i32"],
            ["u", updShape],
          ],
          (b, i, u) => b.emit("scatterAdd", [i!, u!], { axis, shape }),
        );
        const [out] = interpret(g, [idx, upd]);
        const ref = new Float64Array(size(shape));
        const r = idxShape.length;
        for (let f = 0; f < upd.length; f++) {
          const o = unravel(f, updShape);
          const j = idx[ravel(o.slice(axis, axis + r), idxShape)]!;
          ref[ravel([...o.slice(0, axis), Math.min(n - 1, Math.max(0, j)), ...o.slice(axis + r)], shape)] += upd[f]!;
        }
        expectClose(out!, ref, 1e-15);
      }
    }));
});

describe("sources and calls", () => {
  it("iota counts along its axis and constants wrap to their dtype", () => {
    const b = new GraphBuilder();
    const io = b.emit("iota", [], { shape: [2, 3, 4], axis: 1 });
    const fo = b.emit("iota", [], { shape: [5], axis: 0, dtype: "f32" });
    const c = b.emit("constant", [], { value: 2 ** 32 + 7, dtype: "u32" });
    const [iv, fv, cv] = interpret(b.build([io, fo, c]), []);
    expectEqual(iv!, tabulate([2, 3, 4], ([, j]) => j!));
    expectEqual(fv!, [0, 1, 2, 3, 4]);
    expectEqual(cv!, [7]);
    expect(io.dtype).toBe("i32");
  });

  it("a call node evaluates its body on its inputs", () =>
    withSeed((rng) => {
      const body = makeGraph(
        [
          ["u", [3]],
          ["v", [3]],
        ],
        (b, u, v) => b.emit("mul", [b.emit("sin", [u!]), v!]),
      );
      const b = new GraphBuilder();
      const x = b.input("x", [3], "f32");
      const y = b.input("y", [3], "f32");
      const c = b.emit("call", [y, x], { body: graphRef(body), mode: "checkpoint" });
      const xv = randomArray(rng, 3);
      const yv = randomArray(rng, 3);
      const [out] = interpret(b.build([c], [x, y]), [xv, yv]);
      expectEqual(out!, yv.map((t, i) => Math.sin(t) * xv[i]!));
    }));

  it("checks input counts and sizes", () => {
    const g = makeGraph([["x", [2, 3]]], (b, x) => b.emit("exp", [x!]));
    expect(() => interpret(g, [])).toThrow("interpret: the graph takes 1 inputs, found 0");
    expect(() => interpret(g, [[1, 2]])).toThrow('interpret: input "x" (f32[2,3]) needs 6 values, found 2');
    expect(() => interpret(g, [{ data: new Float64Array(6), shape: [3, 2] }])).toThrow('input "x" must have shape [2,3], found [3,2]');
  });
});
