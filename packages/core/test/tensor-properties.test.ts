// Property tests (fast-check) of the trace-time shape rules: broadcasting and reshape accept
// exactly what an independent statement of the rule accepts, give its result shape, and move
// the data as a loop does. fast-check runs from the suite's seed (DORAFUSE_SEED replays it)
// and prints it with the shrunk counterexample on failure.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HostTensor, ShapeError, evaluate, type Tensor } from "@dorafuse/core";
import { expectEqual, ravel, size, tabulate } from "./support/numeric.js";
import { testSeed } from "./support/random.js";

type W = Tensor<number[], "f32">;
const seed = testSeed();
const params = { numRuns: 80, seed };

const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 4 });
const host = (shape: number[]): HostTensor => new HostTensor(shape, Float64Array.from({ length: size(shape) }, (_, i) => i * 0.5 - 3), "f32");

/** The numpy rule, stated independently: right-aligned, each pair equal or one of them 1. */
function broadcastRule(a: number[], b: number[]): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

/** Shapes biased toward compatibility: `b` is `a` with some dims set to 1 or changed. */
const pairArb = shapeArb.chain((a) =>
  fc.tuple(
    fc.constant(a),
    fc
      .tuple(fc.integer({ min: 0, max: a.length }), fc.array(fc.integer({ min: 0, max: 5 }), { minLength: a.length, maxLength: a.length }))
      .map(([drop, mods]) => a.slice(drop).map((d, i) => (mods[i + drop]! === 0 ? 1 : mods[i + drop]! === 5 ? d + 1 : d))),
  ),
);

describe("broadcasting (property)", () => {
  it(`add succeeds exactly when the numpy rule holds, with its shape and values`, () => {
    fc.assert(
      fc.property(pairArb, ([a, b]) => {
        const want = broadcastRule(a, b);
        const run = () => evaluate((x: W, y: W) => x.add(y), [host(a), host(b)] as never) as unknown as HostTensor;
        if (!want) {
          expect(run).toThrow(ShapeError);
          return;
        }
        const r = run();
        expect(r.shape).toEqual(want);
        const at = (s: number[], idx: number[]) => host(s).data[ravel(s.map((d, i) => (d === 1 ? 0 : idx[i + idx.length - s.length]!)), s)]!;
        expectEqual(r.data, tabulate(want, (idx) => at(a, idx) + at(b, idx)));
      }),
      params,
    );
  });

  it(`broadcasting is symmetric in its operands`, () => {
    fc.assert(
      fc.property(pairArb, ([a, b]) => {
        if (!broadcastRule(a, b)) return;
        const ab = evaluate((x: W, y: W) => x.mul(y), [host(a), host(b)] as never) as unknown as HostTensor;
        const ba = evaluate((x: W, y: W) => y.mul(x), [host(a), host(b)] as never) as unknown as HostTensor;
        expect(ab.shape).toEqual(ba.shape);
        expectEqual(ab.data, ba.data);
      }),
      params,
    );
  });
});

const primeFactors = (n: number): number[] => {
  const out: number[] = [];
  for (let p = 2; n > 1; p++) while (n % p === 0) (out.push(p), (n /= p));
  return out;
};

/** A target shape with the same element count: the prime factors of `s`, shuffled and regrouped. */
const regroupArb = (s: number[]) => {
  const factors = s.flatMap(primeFactors);
  return fc.tuple(fc.shuffledSubarray(factors, { minLength: factors.length, maxLength: factors.length }), fc.array(fc.boolean(), { minLength: factors.length, maxLength: factors.length })).map(([fs, cuts]) => {
    const out: number[] = [];
    let cur = 1;
    fs.forEach((f, i) => {
      cur *= f;
      if (cuts[i] || i === fs.length - 1) (out.push(cur), (cur = 1));
    });
    return out;
  });
};

describe("reshape (property)", () => {
  it(`a regrouping of the same element count keeps row-major data`, () => {
    fc.assert(
      fc.property(
        shapeArb.chain((s) => fc.tuple(fc.constant(s), regroupArb(s), fc.integer({ min: -1, max: 3 }))),
        ([s, t, hole]) => {
          const target = hole >= 0 && hole < t.length ? t.map((d, i) => (i === hole ? -1 : d)) : t;
          const r = evaluate((x: W) => x.reshape(target), [host(s)] as never) as unknown as HostTensor;
          expect(r.shape).toEqual(t);
          expectEqual(r.data, host(s).data);
        },
      ),
      params,
    );
  });

  it(`a target with a different element count is a ShapeError naming reshape`, () => {
    fc.assert(
      fc.property(shapeArb, shapeArb, (s, t) => {
        if (size(s) === size(t)) return;
        expect(() => evaluate((x: W) => x.reshape(t), [host(s)] as never)).toThrow(/^reshape: cannot reshape/);
      }),
      params,
    );
  });
});
