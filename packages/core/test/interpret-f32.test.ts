// The interpreter's float32-rounding mode: every f32 result is Math.fround of the float64
// result of its (already rounded) inputs; every f16 result is rounded to half precision.
import { describe, expect, it } from "vitest";
import { interpret, roundF16, type DType } from "@dorafuse/core";
import { makeGraph } from "./support/graph.js";
import { expectEqual } from "./support/numeric.js";
import { randomArray, withSeed } from "./support/random.js";

/** All finite non-negative halves, ascending, decoded from their bit patterns. */
const HALVES: number[] = (() => {
  const v: number[] = [];
  for (let bits = 0; bits < 0x7c00; bits++) {
    const e = bits >> 10;
    const m = bits & 0x3ff;
    v.push(e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
  }
  return v;
})();

/** Nearest half by search over the table, ties to the even bit pattern; beyond 65520 → ∞. */
function halfModel(x: number): number {
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  let lo = 0;
  let hi = HALVES.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (HALVES[mid]! <= a) lo = mid;
    else hi = mid;
  }
  const dl = a - HALVES[lo]!;
  const dh = HALVES[hi]! - a;
  const r = dl < dh ? HALVES[lo]! : dh < dl ? HALVES[hi]! : HALVES[lo % 2 === 0 ? lo : hi]!;
  return x < 0 ? -r : r;
}

describe("roundF16", () => {
  it("matches a table of every half on random magnitudes, subnormals and ties", () =>
    withSeed((rng) => {
      const xs = [1 / 3, 65504, 65519.99, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1];
      for (let i = 0; i < 3000; i++) xs.push((rng.next() < 0.5 ? -1 : 1) * 2 ** rng.uniform(-26, 16.5));
      for (const x of xs) expect(roundF16(x), `x = ${x}`).toBe(halfModel(x));
      expect(roundF16(1 + 2 ** -11)).toBe(1); // tie to even
      expect(roundF16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    }));
});

describe('interpret in "f32" mode', () => {
  const ops1 = ["exp", "log", "sqrt", "tanh", "recip", "erf"];
  const ops2 = ["add", "sub", "mul", "div", "pow"];

  for (const dtype of ["f32", "f16"] as const) {
    const round = dtype === "f32" ? Math.fround : halfModel;
    it(`rounds each single ${dtype} op's float64 result of rounded inputs`, () =>
      withSeed((rng) => {
        const n = 50;
        const x = randomArray(rng, n, { lo: 0.1, hi: 3 });
        const y = randomArray(rng, n, { lo: 0.1, hi: 3 });
        const g = makeGraph(
          [
            ["x", [n], dtype],
            ["y", [n], dtype],
          ],
          (b, a, c) => [...ops1.map((op) => b.emit(op, [a!])), ...ops2.map((op) => b.emit(op, [a!, c!]))],
        );
        const f32 = interpret(g, [x, y], { mode: "f32" });
        const f64 = interpret(g, [x.map(round), y.map(round)], { mode: "f64" });
        f32.forEach((out, k) => {
          const op = [...ops1, ...ops2][k]!;
          expectEqual(out, f64[k]!.map(round), `${dtype} ${op}`);
          // the f64 reference itself is not rounded: the modes really differ on these inputs
          expect(f64[k]!.some((v, i) => v !== out[i]), `${dtype} ${op} differs from f64`).toBe(true);
        });
      }));
  }

  it("rounds every intermediate of a chain, and float64 mode rounds none", () =>
    withSeed((rng) => {
      const n = 40;
      const x = randomArray(rng, n);
      const g = makeGraph([["x", [n]]], (b, a) => {
        const t = b.emit("mul", [a!, b.emit("broadcast", [b.emit("constant", [], { value: 0.1 })], { shape: [n] })]);
        return b.emit("reduceSum", [b.emit("add", [t, t])], { axes: [0] });
      });
      const [r32] = interpret(g, [x], { mode: "f32" });
      const [r64] = interpret(g, [x]);
      const f = Math.fround;
      const terms = Array.from(x, (v) => f(f(f(v) * f(0.1)) * 2));
      expect(r32![0]).toBe(f(terms.reduce((s, v) => s + v, 0)));
      expect(r64![0]).toBe(Array.from(x, (v) => v * 0.1 * 2).reduce((s, v) => s + v, 0));
      expect(r32![0]).not.toBe(r64![0]);
    }));

  it("leaves integers and bools alone in both modes", () =>
    withSeed(() => {
      const dtypes: DType[] = ["i32", "u32"];
      for (const d of dtypes) {
        const g = makeGraph(
          [
            ["a", [3], d],
            ["b", [3], d],
          ],
          (b, a, c) => [b.emit("mul", [a!, c!]), b.emit("lt", [a!, c!])],
        );
        const inputs = [
          [16777217, 3, 123456789],
          [1, 16777219, 7],
        ];
        const [m32, l32] = interpret(g, inputs, { mode: "f32" });
        const [m64, l64] = interpret(g, inputs);
        expectEqual(m32!, m64!);
        expectEqual(l32!, l64!);
        expect(m64![0]).toBe(16777217); // not representable in f32, kept exact as an int
      }
    }));

  it("cast to f16 from f32 rounds to half in f32 mode and not in f64 mode", () => {
    const g = makeGraph([["x", [2]]], (b, a) => b.emit("cast", [a!], { dtype: "f16" }));
    expectEqual(interpret(g, [[0.1, 1 / 3]], { mode: "f32" })[0]!, [halfModel(0.1), halfModel(1 / 3)]);
    expectEqual(interpret(g, [[0.1, 1 / 3]])[0]!, [0.1, 1 / 3]);
  });
});
