// The DoRA paper's weight-decomposition analysis (Liu et al. 2024, "DoRA: Weight-Decomposed
// Low-Rank Adaptation", §2.2, eqs. 3–4): how far fine-tuning moved each weight in magnitude and
// in direction, relative to the pre-trained weight W0.
//
// The paper writes W ∈ R^{d×k} and decomposes it per COLUMN (k columns, one per output).
// dorafuse stores W as [out, in] (PyTorch's layout), so the paper's columns are our ROWS:
//
//   ΔM = (1/out) Σ_n | ‖W_n‖ − ‖W0_n‖ |          (mean absolute change of the row magnitudes)
//   ΔD = (1/out) Σ_n ( 1 − cos(W_n, W0_n) )       (mean cosine distance of the row directions)
//
// For LoRA and full fine-tuning W is the fine-tuned (merged) weight; for DoRA the paper uses m
// and V/‖V‖, which are exactly the magnitude and direction of the merged weight m ⊙ V/‖V‖ (for
// m > 0, which training keeps), so one function serves all three: pass merged weights
// (`effectiveWeight` merges a checkpoint's adapter on the host).
//
// Each (layer, step) is one point (ΔD, ΔM); the paper plots them per method and reads the sign
// of their correlation: negative for full fine-tuning and DoRA, positive for LoRA.
import { AnalysisError } from "./errors.js";

/** A row-major matrix: rows = output features, cols = input features. */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: ArrayLike<number>;
}

export function matrix(rows: number, cols: number, data: ArrayLike<number>): Matrix {
  if (data.length !== rows * cols) throw new AnalysisError(`matrix: ${rows}×${cols} needs ${rows * cols} values, found ${data.length}`);
  return { rows, cols, data };
}

/** L2 norm of every row (the paper's ‖·‖_c over columns), in float64. */
export function rowNorms(w: Matrix): Float64Array {
  const out = new Float64Array(w.rows);
  for (let r = 0; r < w.rows; r++) {
    let s = 0;
    for (let c = 0; c < w.cols; c++) {
      const v = w.data[r * w.cols + c]!;
      s += v * v;
    }
    out[r] = Math.sqrt(s);
  }
  return out;
}

export interface DecompositionChange {
  /** Mean absolute change of the row magnitudes. */
  readonly dM: number;
  /** Mean of 1 − cos between the rows of W and W0. */
  readonly dD: number;
}

/**
 * ΔM and ΔD of `w` against `w0` (both [out, in]). 1 − cos is computed as ½‖Ŵ_n − Ŵ0_n‖² of
 * the unit rows (equal in exact arithmetic) because fine-tuning moves directions by tiny
 * angles, where 1 − cos cancels catastrophically and this form does not. A zero row has no
 * direction: it counts 0 against a zero row and 1 (orthogonal) against a nonzero one.
 */
export function decompositionChange(w: Matrix, w0: Matrix, where = "weight"): DecompositionChange {
  if (w.rows !== w0.rows || w.cols !== w0.cols) {
    throw new AnalysisError(`${where}: expected the base shape [${w0.rows}, ${w0.cols}], found [${w.rows}, ${w.cols}]`);
  }
  if (w.rows === 0) throw new AnalysisError(`${where}: a weight with no rows has no magnitudes to compare`);
  const n = rowNorms(w);
  const n0 = rowNorms(w0);
  let dM = 0;
  let dD = 0;
  for (let r = 0; r < w.rows; r++) {
    dM += Math.abs(n[r]! - n0[r]!);
    if (n[r] === 0 || n0[r] === 0) {
      dD += n[r] === n0[r] ? 0 : 1;
      continue;
    }
    let d2 = 0;
    for (let c = 0; c < w.cols; c++) {
      const d = w.data[r * w.cols + c]! / n[r]! - w0.data[r * w.cols + c]! / n0[r]!;
      d2 += d * d;
    }
    dD += d2 / 2;
  }
  return { dM: dM / w.rows, dD: dD / w.rows };
}

/** A linear layer as a checkpoint holds it: plain, LoRA (loraA, loraB) or DoRA (… and m). */
export interface LayerWeights {
  readonly w: Matrix;
  readonly loraA?: Matrix; // [r, in]
  readonly loraB?: Matrix; // [out, r]
  readonly m?: ArrayLike<number>; // [out]
}

/**
 * The weight the layer computes with, in float64: W; W + s·B·A (LoRA); m ⊙ (W + s·B·A)/‖·‖_row
 * (DoRA; the exact norm, without core's ε guard, which is below float32 resolution here).
 */
export function effectiveWeight(layer: LayerWeights, scale: number, where = "layer"): Matrix {
  const { w, loraA: a, loraB: b, m } = layer;
  if (!a && !b && !m) return w;
  if (!a || !b) throw new AnalysisError(`${where}: an adapter needs both loraA and loraB, found ${[a && "loraA", b && "loraB", m && "m"].filter(Boolean).join(" and ")} only`);
  if (a.cols !== w.cols || b.rows !== w.rows || b.cols !== a.rows) {
    throw new AnalysisError(
      `${where}: expected loraA [r, ${w.cols}] and loraB [${w.rows}, r], found loraA [${a.rows}, ${a.cols}] and loraB [${b.rows}, ${b.cols}]`,
    );
  }
  if (m && m.length !== w.rows) throw new AnalysisError(`${where}: expected m of length ${w.rows}, found ${m.length}`);
  const v = new Float64Array(w.rows * w.cols);
  for (let o = 0; o < w.rows; o++) {
    for (let i = 0; i < w.cols; i++) {
      let ba = 0;
      for (let k = 0; k < a.rows; k++) ba += b.data[o * b.cols + k]! * a.data[k * a.cols + i]!;
      v[o * w.cols + i] = w.data[o * w.cols + i]! + scale * ba;
    }
  }
  if (m) {
    const norms = rowNorms({ rows: w.rows, cols: w.cols, data: v });
    for (let o = 0; o < w.rows; o++) {
      const g = m[o]! / norms[o]!;
      for (let i = 0; i < w.cols; i++) v[o * w.cols + i]! *= g;
    }
  }
  return { rows: w.rows, cols: w.cols, data: v };
}

/** A tensor as a checkpoint reader returns it (the runtime's `loadCheckpoint(...).tensors[name]`). */
export interface FlatTensor {
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
  readonly dtype?: string;
}

function flatMatrix(tensors: Readonly<Record<string, FlatTensor>>, name: string, rank: 1 | 2): Matrix | undefined {
  const t = tensors[name];
  if (!t) return undefined;
  if (t.dtype !== undefined && !["F32", "F64", "f32"].includes(t.dtype)) {
    throw new AnalysisError(`"${name}": expected F32 or F64 values, found ${t.dtype} (convert half-precision bits first)`);
  }
  if (t.shape.length !== rank) throw new AnalysisError(`"${name}": expected a rank-${rank} tensor, found shape [${t.shape.join(", ")}]`);
  return rank === 2 ? matrix(t.shape[0]!, t.shape[1]!, t.data) : matrix(t.shape[0]!, 1, t.data);
}

/**
 * The effective weight of each of `layers` (dotted paths) from a checkpoint's flat tensors
 * `<layer>.w`, `<layer>.loraA`, `<layer>.loraB`, `<layer>.m`, merged by `effectiveWeight`. A
 * frozen `w` that the checkpoint does not hold comes from `base`.
 */
export function checkpointWeights(
  tensors: Readonly<Record<string, FlatTensor>>,
  layers: readonly string[],
  options: { readonly scale: number; readonly base?: Readonly<Record<string, Matrix>> },
): Record<string, Matrix> {
  const out: Record<string, Matrix> = {};
  for (const layer of layers) {
    const w = flatMatrix(tensors, `${layer}.w`, 2) ?? options.base?.[layer];
    if (!w) throw new AnalysisError(`layer "${layer}": no "${layer}.w" in the checkpoint and no base weight given for it`);
    const m = flatMatrix(tensors, `${layer}.m`, 1);
    const layerWeights: LayerWeights = {
      w,
      ...(tensors[`${layer}.loraA`] ? { loraA: flatMatrix(tensors, `${layer}.loraA`, 2)! } : {}),
      ...(tensors[`${layer}.loraB`] ? { loraB: flatMatrix(tensors, `${layer}.loraB`, 2)! } : {}),
      ...(m ? { m: m.data } : {}),
    };
    out[layer] = effectiveWeight(layerWeights, options.scale, layer);
  }
  return out;
}

/** Pearson's r of two equally long series; NaN when either is constant (r is undefined there). */
export function pearson(xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  if (xs.length !== ys.length) throw new AnalysisError(`pearson: series of different lengths (${xs.length} and ${ys.length})`);
  const n = xs.length;
  if (n < 2) return NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i]!;
    my += ys[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** One saved checkpoint of a method: its (merged) weights by layer path. */
export interface WeightCheckpoint {
  readonly step: number;
  readonly weights: Readonly<Record<string, Matrix>>;
}

export interface MethodCheckpoints {
  readonly method: string;
  readonly checkpoints: readonly WeightCheckpoint[];
}

export interface AnalysisPoint {
  readonly layer: string;
  readonly step: number;
  readonly dM: number;
  readonly dD: number;
}

export interface MethodAnalysis {
  readonly method: string;
  /** Ordered by step, then layer. */
  readonly points: readonly AnalysisPoint[];
  /** Pearson's r between ΔD and ΔM over all the method's points. */
  readonly correlation: number;
}

/**
 * ΔM and ΔD of every layer of `base` at every checkpoint of every method, and the per-method
 * correlation. Each checkpoint must hold every base layer (a missing one is an error naming it).
 */
export function analyzeDecomposition(base: Readonly<Record<string, Matrix>>, runs: readonly MethodCheckpoints[]): MethodAnalysis[] {
  const layers = Object.keys(base).sort();
  if (layers.length === 0) throw new AnalysisError("analyzeDecomposition: the base has no layers to compare against");
  return runs.map(({ method, checkpoints }) => {
    if (checkpoints.length === 0) throw new AnalysisError(`analyzeDecomposition: method "${method}" has no checkpoints`);
    const points: AnalysisPoint[] = [];
    for (const { step, weights } of [...checkpoints].sort((a, b) => a.step - b.step)) {
      for (const layer of layers) {
        const w = weights[layer];
        const where = `${method} step ${step} layer "${layer}"`;
        if (!w) throw new AnalysisError(`${where}: missing from the checkpoint (it has ${Object.keys(weights).sort().join(", ") || "no layers"})`);
        points.push({ layer, step, ...decompositionChange(w, base[layer]!, where) });
      }
    }
    return { method, points, correlation: pearson(points.map((p) => p.dD), points.map((p) => p.dM)) };
  });
}

/** A plain-text table of the analysis, one line per method and step, for the terminal. */
export function formatAnalysis(results: readonly MethodAnalysis[]): string {
  const lines = ["method  step  layers  mean ΔD      mean ΔM      r(ΔD, ΔM)"];
  for (const { method, points, correlation } of results) {
    const steps = [...new Set(points.map((p) => p.step))];
    steps.forEach((step, i) => {
      const at = points.filter((p) => p.step === step);
      const mean = (f: (p: AnalysisPoint) => number) => at.reduce((s, p) => s + f(p), 0) / at.length;
      const r = i === 0 ? (Number.isNaN(correlation) ? "undefined" : correlation.toFixed(3)) : "";
      lines.push(
        `${(i === 0 ? method : "").padEnd(7)} ${String(step).padStart(5)}  ${String(at.length).padStart(6)}  ` +
          `${mean((p) => p.dD).toExponential(3).padEnd(11)}  ${mean((p) => p.dM).toExponential(3).padEnd(11)}  ${r}`,
      );
    });
  }
  return lines.join("\n");
}
