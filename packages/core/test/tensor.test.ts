// Tensor ops through the interpreter against values computed here by naive loops, on random
// shapes with size-1 and broadcast dimensions.
import { describe, expect, it } from "vitest";
import { HostTensor, arange, concat, evaluate, fill, hostTensor, iota, matmul, ones, scalar, where, zeros, type Tensor } from "@dorafuse/core";
import { expectClose, expectEqual, ravel, size, tabulate, unravel } from "./support/numeric.js";
import { randomShape, withSeed, type Rng } from "./support/random.js";
import { randomHost, randomIntHost } from "./support/frontend-check.js";

type W = Tensor<number[], "f32">;
type WI = Tensor<number[], "i32">;

/** Value of `x` at the broadcast position `idx` of an output of rank idx.length (right-aligned). */
function at(x: HostTensor, idx: readonly number[]): number {
  const off = idx.length - x.shape.length;
  return x.data[ravel(x.shape.map((d, i) => (d === 1 ? 0 : idx[i + off]!)), x.shape)]!;
}

/** A shape that broadcasts with `s`: some dims set to 1, some leading dims dropped. */
function compatibleShape(rng: Rng, s: readonly number[]): number[] {
  const drop = rng.int(0, s.length);
  return s.slice(drop).map((d) => (rng.next() < 0.3 ? 1 : d));
}

const ev = <R>(fn: (...xs: never[]) => R, args: HostTensor[]): HostTensor =>
  evaluate(fn as never, args as never) as unknown as HostTensor;

describe("elementwise ops broadcast like numpy", () => {
  const ops: [string, (a: W, b: W) => W, (x: number, y: number) => number][] = [
    ["add", (a, b) => a.add(b), (x, y) => x + y],
    ["sub", (a, b) => a.sub(b), (x, y) => x - y],
    ["mul", (a, b) => a.mul(b), (x, y) => x * y],
    ["div", (a, b) => a.div(b), (x, y) => x / y],
    ["maximum", (a, b) => a.maximum(b), Math.max],
    ["minimum", (a, b) => a.minimum(b), Math.min],
  ];
  for (const [name, op, ref] of ops) {
    it(`${name} of random broadcast-compatible shapes matches a loop`, () =>
      withSeed((rng) => {
        for (let trial = 0; trial < 4; trial++) {
          const out = randomShape(rng, rng.int(0, 4));
          const sa = compatibleShape(rng, out);
          const sb = rng.next() < 0.5 ? out : compatibleShape(rng, out);
          const a = randomHost(rng, sa);
          const b = randomHost(rng, sb, { minAbs: 0.2 });
          const r = ev((x: W, y: W) => op(x, y), [a, b]);
          const rank = Math.max(sa.length, sb.length);
          const shape = Array.from({ length: rank }, (_, i) => Math.max(sa[i - rank + sa.length] ?? 1, sb[i - rank + sb.length] ?? 1));
          expect(r.shape).toEqual(shape);
          expectClose(r.data, tabulate(shape, (idx) => ref(at(a, idx), at(b, idx))), 1e-12, name);
        }
      }));
  }

  it("numbers become scalars of the tensor's dtype, on either side", () =>
    withSeed((rng) => {
      const a = randomHost(rng, [3, 2], { lo: 0.5, hi: 2 });
      const r = ev((x: W) => x.mul(3).add(0.5).pow(2).div(x), [a]);
      expectClose(r.data, a.data.map((v) => (3 * v + 0.5) ** 2 / v), 1e-12);
      const ints = randomIntHost(rng, [4], -5, 5);
      const q = ev((x: WI) => x.mul(2).add(1), [ints]);
      expect(q.dtype).toBe("i32");
      expectEqual(q.data, ints.data.map((v) => 2 * v + 1));
    }));

  it("unary ops, comparisons, logic and where", () =>
    withSeed((rng) => {
      const a = randomHost(rng, [2, 1, 3], { lo: 0.1, hi: 2 });
      const b = randomHost(rng, [4, 1], { lo: 0.1, hi: 2 });
      const u = ev((x: W) => x.log().exp().sqrt().neg().abs().square().tanh().rsqrt(), [a]);
      expectClose(u.data, a.data.map((v) => 1 / Math.sqrt(Math.tanh(v))), 1e-12);
      const c = ev((x: W, y: W) => x.lt(y).and(x.gt(0.5)).or(y.ge(1.5)).not(), [a, b]);
      expect(c.shape).toEqual([2, 4, 3]);
      expectEqual(c.data, tabulate([2, 4, 3], (i) => (!((at(a, i) < at(b, i) && at(a, i) > 0.5) || at(b, i) >= 1.5) ? 1 : 0)));
      const w = ev((x: W, y: W) => where(x.gt(y), x, 0), [a, b]);
      expectEqual(w.data, tabulate([2, 4, 3], (i) => (at(a, i) > at(b, i) ? at(a, i) : 0)));
      const t = ev((x: W) => x.mul(3).cast("i32"), [hostTensor([4], [-1.7, -0.2, 0.9, 2.5])]);
      expect(t.dtype).toBe("i32");
      expectEqual(t.data, [-5, 0, 2, 7]);
    }));
});

describe("matmul", () => {
  const ref = (a: HostTensor, b: HostTensor, batch: number[]): Float64Array => {
    const [m, k] = a.shape.slice(-2) as [number, number];
    const n = b.shape[b.shape.length - 1]!;
    return tabulate([...batch, m, n], (idx) => {
      const bi = idx.slice(0, -2);
      let s = 0;
      for (let j = 0; j < k; j++) s += at(a, [...bi, idx[idx.length - 2]!, j]) * at(b, [...bi, j, idx[idx.length - 1]!]);
      return s;
    });
  };

  it("with broadcast batch dimensions matches a triple loop", () =>
    withSeed((rng) => {
      for (let trial = 0; trial < 5; trial++) {
        const batch = randomShape(rng, rng.int(0, 3), 3);
        const [m, k, n] = [rng.int(1, 5), rng.int(1, 5), rng.int(1, 5)];
        const a = randomHost(rng, [...compatibleShape(rng, batch), m, k]);
        const b = randomHost(rng, [...compatibleShape(rng, batch), k, n]);
        const r = ev((x: W, y: W) => x.matmul(y), [a, b]);
        const full = Array.from({ length: batch.length }, (_, i) => {
          const da = a.shape.length - 2 - batch.length + i;
          const db = b.shape.length - 2 - batch.length + i;
          return Math.max(a.shape[da] ?? 1, b.shape[db] ?? 1);
        });
        const rank = Math.max(a.shape.length, b.shape.length) - 2;
        const outBatch = full.slice(full.length - rank);
        expect(r.shape).toEqual([...outBatch, m, n]);
        expectClose(r.data, ref(a, b, outBatch), 1e-12);
      }
    }));

  it("a 2-D right operand multiplies the flattened batch (x · Wᵀ)", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [2, 3, 4]);
      const w = randomHost(rng, [5, 4]);
      const r = ev((a: W, b: W) => matmul(a, b.mT()), [x, w]);
      expect(r.shape).toEqual([2, 3, 5]);
      expectClose(r.data, tabulate([2, 3, 5], ([i, j, o]) => [0, 1, 2, 3].reduce((s, c) => s + at(x, [i!, j!, c]) * at(w, [o!, c]), 0)), 1e-12);
    }));
});

describe("reductions", () => {
  it("sum, mean, max, min over random axes, with and without keepDims", () =>
    withSeed((rng) => {
      for (let trial = 0; trial < 6; trial++) {
        const shape = randomShape(rng, rng.int(1, 4));
        const x = randomHost(rng, shape);
        const axes = shape.map((_, i) => i).filter(() => rng.next() < 0.5);
        const keep = rng.next() < 0.5;
        const neg = axes.map((a) => (rng.next() < 0.5 ? a - shape.length : a));
        const outShape = shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
        const groups = new Map<number, number[]>();
        for (let f = 0; f < x.data.length; f++) {
          const idx = unravel(f, shape);
          const o = ravel(idx.flatMap((v, i) => (axes.includes(i) ? (keep ? [0] : []) : [v])), outShape);
          groups.set(o, [...(groups.get(o) ?? []), x.data[f]!]);
        }
        const reduceRef = (g: (vs: number[]) => number) => Float64Array.from({ length: size(outShape) }, (_, o) => (groups.get(o) ? g(groups.get(o)!) : 0));
        const [s, m, mx, mn] = ["sum", "mean", "max", "min"].map((op) =>
          ev((t: W) => (t as unknown as Record<string, (a: number[], k: boolean) => W>)[op]!.call(t, neg, keep), [x]),
        );
        for (const r of [s, m, mx, mn]) expect(r!.shape).toEqual(outShape);
        expectClose(s!.data, reduceRef((v) => v.reduce((p, q) => p + q, 0)), 1e-12, "sum");
        expectClose(m!.data, reduceRef((v) => v.reduce((p, q) => p + q, 0) / v.length), 1e-12, "mean");
        expectEqual(mx!.data, reduceRef((v) => Math.max(...v)), "max");
        expectEqual(mn!.data, reduceRef((v) => Math.min(...v)), "min");
      }
    }));

  it("sum without an axis reduces everything; argmax finds the first maximum", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [3, 5]);
      expectClose(ev((t: W) => t.sum(), [x]).data, [x.data.reduce((p, q) => p + q, 0)], 1e-12);
      const ties = hostTensor([2, 4], [1, 3, 3, 0, -1, -2, -1, -5]);
      expectEqual(ev((t: W) => t.argmax(-1), [ties]).data, [1, 0]);
      const r = ev((t: W) => t.argmax(0, true), [x]);
      expect(r.shape).toEqual([1, 5]);
      expectEqual(r.data, tabulate([5], ([j]) => [0, 1, 2].reduce((b, i) => (at(x, [i, j!]) > at(x, [b, j!]) ? i : b), 0)));
    }));
});

describe("layout ops", () => {
  it("reshape (with -1 and named dims) keeps row-major order", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [2, 3, 4]);
      const r = evaluate((t: W) => t.reshape(["n", -1] as never), [x as never], { dims: { n: 6 } }) as unknown as HostTensor;
      expect(r.shape).toEqual([6, 4]);
      expectEqual(r.data, x.data);
    }));

  it("transpose by random permutations, mT, expandDims and squeeze", () =>
    withSeed((rng) => {
      const shape = randomShape(rng, 4);
      const x = randomHost(rng, shape);
      const perm = rng.shuffle([0, 1, 2, 3]);
      const t = ev((a: W) => a.transpose(perm), [x]);
      expect(t.shape).toEqual(perm.map((p) => shape[p]));
      expectEqual(t.data, tabulate(t.shape, (idx) => at(x, perm.map((_, i) => idx[perm.indexOf(i)]!))));
      const rev = ev((a: W) => a.transpose(), [x]);
      expectEqual(rev.data, tabulate([...shape].reverse(), (idx) => at(x, [...idx].reverse())));
      const mt = ev((a: W) => a.mT(), [x]);
      expectEqual(mt.data, tabulate([shape[0]!, shape[1]!, shape[3]!, shape[2]!], ([a, b, c, d]) => at(x, [a!, b!, d!, c!])));
      const e = ev((a: W) => a.expandDims(-1).expandDims(1).squeeze([1, -1]), [x]);
      expect(e.shape).toEqual(shape);
      expectEqual(e.data, x.data);
    }));

  it("slice with negative bounds, concat along a random axis, gather and broadcastTo", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [5, 6]);
      const s = ev((a: W) => a.slice([[1, -1], [-4]]), [x]);
      expect(s.shape).toEqual([3, 4]);
      expectEqual(s.data, tabulate([3, 4], ([i, j]) => at(x, [i! + 1, j! + 2])));
      const axis = rng.int(0, 2);
      const parts = [1, 2, 3].map((n) => randomHost(rng, axis === 0 ? [n, 2, 3] : axis === 1 ? [2, n, 3] : [2, 3, n]));
      const c = ev((a: W, b: W, d: W) => concat([a, b, d], axis), parts);
      const offsets = [0, 1, 3];
      expectEqual(c.data, tabulate(c.shape, (idx) => {
        const p = [2, 1, 0].find((q) => idx[axis]! >= offsets[q]!)!;
        return at(parts[p]!, idx.map((v, i) => (i === axis ? v - offsets[p]! : v)));
      }));
      const idx = randomIntHost(rng, [2, 3], 0, 5);
      const g = ev((a: W, i: WI) => a.gather(i, 1), [x, idx]);
      expect(g.shape).toEqual([5, 2, 3]);
      expectEqual(g.data, tabulate([5, 2, 3], ([r, p, q]) => at(x, [r!, at(idx, [p!, q!])])));
      const bt = ev((a: W) => a.slice([null, [0, 1]]).broadcastTo([2, 5, 3]), [x]);
      expectEqual(bt.data, tabulate([2, 5, 3], ([, r]) => at(x, [r!, 0])));
    }));
});

describe("creation", () => {
  it("fill, zeros, ones, scalar, iota and arange", () => {
    const r = evaluate(() => ({ f: fill([2, 2], 7), z: zeros([3], "i32"), o: ones([2]), s: scalar(4, "u32"), i: iota([2, 3], 1), a: arange(4, "f32") }), []);
    expectEqual(r.f.data, [7, 7, 7, 7]);
    expectEqual(r.z.data, [0, 0, 0]);
    expect(r.z.dtype).toBe("i32");
    expectEqual(r.o.data, [1, 1]);
    expectEqual(r.s.data, [4]);
    expectEqual(r.i.data, [0, 1, 2, 0, 1, 2]);
    expectEqual(r.a.data, [0, 1, 2, 3]);
    expect(r.a.dtype).toBe("f32");
  });
});
