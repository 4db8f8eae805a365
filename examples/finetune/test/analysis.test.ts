// ΔM and ΔD on weights built with known changes (row scalings, rotations by known angles), the
// correlation on exactly linear data, and the host merge of adapters against core's mergeLora /
// mergeDora run through the float64 interpreter.
import { describe, expect, it } from "vitest";
import { evaluate, hostTensor, mergeDora, mergeLora, type HostTensor } from "@dorafuse/core";
import { randomArray, withSeed, type Rng } from "../../../packages/core/test/support/random.js";
import {
  AnalysisError,
  analyzeDecomposition,
  checkpointWeights,
  decompositionChange,
  effectiveWeight,
  formatAnalysis,
  matrix,
  pearson,
  rowNorms,
  type Matrix,
} from "../src/index.js";

const randomMatrix = (rng: Rng, rows: number, cols: number): Matrix => matrix(rows, cols, randomArray(rng, rows * cols, { minAbs: 0.05 }));
const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / xs.length;
// 1 − cos θ without cancellation, for the expected values
const oneMinusCos = (theta: number) => 2 * Math.sin(theta / 2) ** 2;

/** Each row of `w0` scaled by `scale[r]` and turned by `theta[r]` towards a random orthogonal direction. */
function transformRows(rng: Rng, w0: Matrix, scale: (r: number) => number, theta: (r: number) => number): Matrix {
  const out = new Float64Array(w0.rows * w0.cols);
  const norms = rowNorms(w0);
  for (let r = 0; r < w0.rows; r++) {
    const row = Array.from({ length: w0.cols }, (_, c) => w0.data[r * w0.cols + c]!);
    const unit = row.map((v) => v / norms[r]!);
    // Gram–Schmidt: a random vector made orthogonal to the row, then normalized
    const g = Array.from({ length: w0.cols }, () => rng.normal());
    const dot = g.reduce((s, v, c) => s + v * unit[c]!, 0);
    const orth = g.map((v, c) => v - dot * unit[c]!);
    const on = Math.hypot(...orth);
    for (let c = 0; c < w0.cols; c++) {
      out[r * w0.cols + c] = scale(r) * norms[r]! * (Math.cos(theta(r)) * unit[c]! + Math.sin(theta(r)) * (orth[c]! / on));
    }
  }
  return matrix(w0.rows, w0.cols, out);
}

describe("decompositionChange", () => {
  it("scaling every row by 1.5 gives ΔM = 0.5 · mean row norm and ΔD = 0", () =>
    withSeed((rng) => {
      const w0 = randomMatrix(rng, 12, 20);
      const w = matrix(12, 20, Array.from(w0.data, (v) => 1.5 * v));
      const { dM, dD } = decompositionChange(w, w0);
      expect(dM).toBeCloseTo(0.5 * mean(rowNorms(w0)), 12);
      expect(Math.abs(dD)).toBeLessThan(1e-15);
    }));

  it("different scales per row give the mean of |c_r − 1| · ‖W0_r‖", () =>
    withSeed((rng) => {
      const w0 = randomMatrix(rng, 9, 7);
      const c = Array.from({ length: 9 }, () => rng.uniform(0.3, 2));
      const w = transformRows(rng, w0, (r) => c[r]!, () => 0);
      const norms = rowNorms(w0);
      const { dM, dD } = decompositionChange(w, w0);
      expect(dM).toBeCloseTo(mean(c.map((ci, r) => Math.abs(ci - 1) * norms[r]!)), 12);
      expect(dD).toBeLessThan(1e-15);
    }));

  it("rotating every row by θ keeps ΔM = 0 and gives ΔD = 1 − cos θ, accurately even for tiny θ", () =>
    withSeed((rng) => {
      const w0 = randomMatrix(rng, 10, 16);
      for (const theta of [1e-6, 1e-3, 0.3, Math.PI / 2, 2.5]) {
        const w = transformRows(rng, w0, () => 1, () => theta);
        const { dM, dD } = decompositionChange(w, w0);
        expect(dM).toBeLessThan(1e-12);
        // relative: at θ = 1e-6, 1 − cos θ = 5e-13, which a naive 1 − cos would get only to ~1e-4
        expect(Math.abs(dD - oneMinusCos(theta)) / oneMinusCos(theta)).toBeLessThan(1e-8);
      }
    }));

  it("combined per-row scales and angles average row by row", () =>
    withSeed((rng) => {
      const w0 = randomMatrix(rng, 8, 12);
      const c = Array.from({ length: 8 }, () => rng.uniform(0.5, 1.5));
      const th = Array.from({ length: 8 }, () => rng.uniform(0, Math.PI));
      const w = transformRows(rng, w0, (r) => c[r]!, (r) => th[r]!);
      const norms = rowNorms(w0);
      const { dM, dD } = decompositionChange(w, w0);
      expect(dM).toBeCloseTo(mean(c.map((ci, r) => Math.abs(ci - 1) * norms[r]!)), 12);
      expect(dD).toBeCloseTo(mean(th.map(oneMinusCos)), 12);
    }));

  it("a flipped row is ΔD = 2; zero rows count 0 against zero and 1 against a nonzero row", () => {
    const w0 = matrix(3, 2, [1, 2, 0, 0, 0, 0]);
    expect(decompositionChange(matrix(3, 2, [-1, -2, 0, 0, 0, 0]), w0).dD).toBeCloseTo(2 / 3, 15);
    const w = matrix(3, 2, [1, 2, 0, 0, 3, 4]); // row 2 grows from nothing: ΔM 5, ΔD 1
    expect(decompositionChange(w, w0)).toEqual({ dM: 5 / 3, dD: 1 / 3 });
  });

  it("rejects weights of a different shape, naming where", () => {
    expect(() => decompositionChange(matrix(2, 3, new Float64Array(6)), matrix(3, 2, new Float64Array(6)), "blocks.0.attn.q")).toThrow(
      /blocks.0.attn.q: expected the base shape \[3, 2\], found \[2, 3\]/,
    );
    expect(() => matrix(2, 2, [1, 2, 3])).toThrow(AnalysisError);
  });
});

describe("pearson", () => {
  it("is ±1 on exactly linear data and undefined (NaN) on a constant series", () =>
    withSeed((rng) => {
      const xs = Array.from({ length: 30 }, () => rng.uniform(-5, 5));
      expect(pearson(xs, xs.map((x) => 3 * x + 2))).toBeCloseTo(1, 12);
      expect(pearson(xs, xs.map((x) => -0.25 * x + 7))).toBeCloseTo(-1, 12);
      expect(pearson(xs, xs.map(() => 4))).toBeNaN();
    }));

  it("matches the one-pass textbook formula on random data", () =>
    withSeed((rng) => {
      const n = 50;
      const xs = Array.from({ length: n }, () => rng.normal());
      const ys = xs.map((x) => 0.4 * x + rng.normal());
      const s = (f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i)).reduce((a, b) => a + b, 0);
      const [sx, sy, sxy, sxx, syy] = [s((i) => xs[i]!), s((i) => ys[i]!), s((i) => xs[i]! * ys[i]!), s((i) => xs[i]! ** 2), s((i) => ys[i]! ** 2)];
      const expected = (n * sxy - sx * sy) / Math.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
      expect(pearson(xs, ys)).toBeCloseTo(expected, 10);
    }));
});

describe("analyzeDecomposition", () => {
  it("gives one point per layer and checkpoint, and r = −1 for changes built on a falling line", () =>
    withSeed((rng) => {
      const q0 = randomMatrix(rng, 6, 8);
      const v0 = randomMatrix(rng, 6, 8);
      const nq = mean(rowNorms(q0));
      // FT-like: the more the magnitude grows, the less the direction moves (ΔD = 0.3 − a)
      const growth = [0.05, 0.1, 0.2];
      const ft = growth.map((a, k) => ({
        step: (k + 1) * 100,
        weights: { q: transformRows(rng, q0, () => 1 + a, () => Math.acos(1 - (0.3 - a))), v: v0 },
      }));
      // LoRA-like: both grow together (ΔD = a / 2)
      const lora = growth.map((a, k) => ({ step: (k + 1) * 100, weights: { q: transformRows(rng, q0, () => 1 + a, () => Math.acos(1 - a / 2)), v: v0 } }));
      const [rft, rlora] = analyzeDecomposition({ q: q0 }, [
        { method: "FT", checkpoints: [...ft].reverse() },
        { method: "LoRA", checkpoints: lora },
      ]);
      expect(rft!.points.map((p) => [p.layer, p.step])).toEqual([["q", 100], ["q", 200], ["q", 300]]);
      rft!.points.forEach((p, k) => {
        expect(p.dM).toBeCloseTo(growth[k]! * nq, 12);
        expect(p.dD).toBeCloseTo(0.3 - growth[k]!, 12);
      });
      expect(rft!.correlation).toBeCloseTo(-1, 10);
      expect(rlora!.correlation).toBeCloseTo(1, 10);

      const both = analyzeDecomposition({ q: q0, v: v0 }, [{ method: "FT", checkpoints: ft }])[0]!;
      expect(both.points.length).toBe(6);
      expect(both.points.filter((p) => p.layer === "v").every((p) => p.dM < 1e-15 && p.dD < 1e-15)).toBe(true);
      expect(formatAnalysis([rft!, rlora!])).toMatch(/FT\s+100\s+1\s+.*-1\.000/);
    }));

  it("names the method, step and layer a checkpoint is missing", () =>
    withSeed((rng) => {
      const q0 = randomMatrix(rng, 2, 3);
      expect(() => analyzeDecomposition({ q: q0, v: q0 }, [{ method: "DoRA", checkpoints: [{ step: 5, weights: { q: q0 } }] }])).toThrow(
        /DoRA step 5 layer "v": missing from the checkpoint \(it has q\)/,
      );
      expect(() => analyzeDecomposition({ q: q0 }, [{ method: "LoRA", checkpoints: [] }])).toThrow(/method "LoRA" has no checkpoints/);
    }));
});

describe("effectiveWeight", () => {
  const H = (shape: number[], data: ArrayLike<number>) => hostTensor(shape, Array.from(data), "f32");

  it("merges LoRA and DoRA layers as core's mergeLora / mergeDora do (float64 interpreter)", () =>
    withSeed((rng) => {
      const [out, inDim, r] = [7, 9, 3];
      const w = randomMatrix(rng, out, inDim);
      const a = randomMatrix(rng, r, inDim);
      const b = randomMatrix(rng, out, r);
      const m = randomArray(rng, out, { lo: 0.5, hi: 2 });
      const opts = { rank: r, alpha: 6 };
      const scale = opts.alpha / opts.rank;
      const p = { w: H([out, inDim], w.data), loraA: H([r, inDim], a.data), loraB: H([out, r], b.data) };
      const lora = evaluate((q: any) => mergeLora(q, opts).w, [p] as never) as unknown as HostTensor;
      const dora = evaluate((q: any) => mergeDora(q, opts).w, [{ ...p, m: H([out], m) }] as never) as unknown as HostTensor;
      const rel = (x: ArrayLike<number>, y: ArrayLike<number>) =>
        Math.sqrt(Array.from(x).reduce((s, v, i) => s + (v - y[i]!) ** 2, 0) / Array.from(y).reduce((s, v) => s + v * v, 0));
      expect(rel(effectiveWeight({ w, loraA: a, loraB: b }, scale).data, lora.data)).toBeLessThan(1e-12);
      expect(rel(effectiveWeight({ w, loraA: a, loraB: b, m }, scale).data, dora.data)).toBeLessThan(1e-10);
      // DoRA's merged rows have exactly the magnitudes m
      const norms = rowNorms(effectiveWeight({ w, loraA: a, loraB: b, m }, scale));
      norms.forEach((n, i) => expect(n).toBeCloseTo(m[i]!, 12));
      expect(effectiveWeight({ w }, scale)).toBe(w);
    }));

  it("reads a checkpoint's flat tensors by layer path, the frozen W from the base when absent", () =>
    withSeed((rng) => {
      const w = randomMatrix(rng, 5, 6);
      const a = randomMatrix(rng, 2, 6);
      const b = randomMatrix(rng, 5, 2);
      const m = randomArray(rng, 5, { lo: 0.5, hi: 2 });
      const t = (x: Matrix) => ({ shape: [x.rows, x.cols], data: Float32Array.from(x.data), dtype: "F32" });
      const f32 = (x: Matrix) => matrix(x.rows, x.cols, Float32Array.from(x.data)); // what the file holds
      const tensors = {
        "blocks.0.attn.q.loraA": t(a),
        "blocks.0.attn.q.loraB": t(b),
        "blocks.0.attn.q.m": { shape: [5], data: Float32Array.from(m), dtype: "F32" },
        "blocks.0.attn.v.w": t(w),
      };
      const got = checkpointWeights(tensors, ["blocks.0.attn.q", "blocks.0.attn.v"], { scale: 2, base: { "blocks.0.attn.q": w } });
      const want = effectiveWeight({ w, loraA: f32(a), loraB: f32(b), m: Float32Array.from(m) }, 2);
      expect(Array.from(got["blocks.0.attn.q"]!.data)).toEqual(Array.from(want.data));
      expect(Array.from(got["blocks.0.attn.v"]!.data)).toEqual(Array.from(f32(w).data));
      expect(() => checkpointWeights(tensors, ["blocks.0.attn.q"], { scale: 2 })).toThrow(/no "blocks.0.attn.q.w" in the checkpoint and no base weight/);
      expect(() => checkpointWeights({ "q.w": { shape: [4], data: new Float32Array(4) } }, ["q"], { scale: 1 })).toThrow(/"q.w": expected a rank-2 tensor, found shape \[4\]/);
      expect(() => checkpointWeights({ "q.w": { shape: [2, 2], data: new Uint16Array(4), dtype: "F16" } }, ["q"], { scale: 1 })).toThrow(/found F16/);
    }));

  it("rejects half an adapter and factors of the wrong shape", () => {
    const w = matrix(2, 3, new Float64Array(6));
    expect(() => effectiveWeight({ w, loraA: matrix(1, 3, [1, 2, 3]) }, 1, "q")).toThrow(/q: an adapter needs both loraA and loraB, found loraA only/);
    expect(() => effectiveWeight({ w, loraA: matrix(1, 2, [1, 2]), loraB: matrix(2, 1, [1, 2]) }, 1, "q")).toThrow(
      /expected loraA \[r, 3\] and loraB \[2, r\], found loraA \[1, 2\] and loraB \[2, 1\]/,
    );
  });
});
