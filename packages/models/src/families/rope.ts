// Rotary position embeddings in transformers' convention: the two HALVES of each head are
// rotated together (rotate_half: x ↦ cat(−x₂, x₁)), not interleaved pairs as in the RoPE
// paper and Meta's original code. The cos/sin tables are computed on the host the way
// transformers computes them in float32 (inv_freq, then position · inv_freq rounded to f32,
// then cos and sin), because a GPU's sin/cos of large arguments is far less accurate.
import { HostTensor, concat, type Tensor } from "@dorafuse/core";
import { ModelError } from "../errors.js";

type T = Tensor<number[], "f32">;
const t = (x: unknown): T => x as T;

/** config.json's rope_scaling, of the kinds implemented here. */
export type RopeScaling =
  | { readonly type: "linear"; readonly factor: number }
  | { readonly type: "llama3"; readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly originalMaxPositions: number };

export function readRopeScaling(json: unknown, file: string): RopeScaling | undefined {
  if (json === null || json === undefined) return undefined;
  const r = json as Record<string, unknown>;
  const type = (r.rope_type ?? r.type) as string | undefined;
  const num = (k: string): number => {
    if (typeof r[k] !== "number") throw new ModelError(`${file}: rope_scaling.${k} must be a number for rope_type "${type}", found ${JSON.stringify(r[k])}`);
    return r[k] as number;
  };
  if (type === undefined || type === "default") return undefined;
  if (type === "linear") return { type, factor: num("factor") };
  if (type === "llama3") return { type, factor: num("factor"), lowFreqFactor: num("low_freq_factor"), highFreqFactor: num("high_freq_factor"), originalMaxPositions: num("original_max_position_embeddings") };
  throw new ModelError(`${file}: rope_scaling type "${type}" is not supported (supported: default, linear, llama3)`);
}

/** The rotary inverse frequencies of a head of `dim`, in float32 as transformers computes them, with scaling applied. */
export function inverseFrequencies(dim: number, theta: number, scaling?: RopeScaling): Float64Array {
  const f = Math.fround;
  const inv = Float64Array.from({ length: dim / 2 }, (_, i) => f(1 / f(Math.pow(theta, f((2 * i) / dim)))));
  if (!scaling) return inv;
  if (scaling.type === "linear") return inv.map((x) => f(x / scaling.factor));
  // modeling_rope_utils._compute_llama3_parameters: long wavelengths slowed by `factor`, short
  // ones kept, a smooth blend between
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions: old } = scaling;
  const lowWavelen = old / lowFreqFactor;
  const highWavelen = old / highFreqFactor;
  return inv.map((x) => {
    const wavelen = (2 * Math.PI) / x;
    if (wavelen > lowWavelen) return f(x / factor);
    if (wavelen < highWavelen) return x;
    const smooth = (old / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return f((1 - smooth) * (x / factor) + smooth * x);
  });
}

/** cos and sin `[positions, dim/2]` (f32 values) of position · inv_freq. */
export function ropeTables(dim: number, positions: number, theta: number, scaling?: RopeScaling): { cos: HostTensor; sin: HostTensor } {
  const inv = inverseFrequencies(dim, theta, scaling);
  const half = dim / 2;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]!);
      cos[p * half + i] = Math.fround(Math.cos(angle));
      sin[p * half + i] = Math.fround(Math.sin(angle));
    }
  }
  return { cos: new HostTensor([positions, half], cos, "f32"), sin: new HostTensor([positions, half], sin, "f32") };
}

/**
 * x `[B, H, T, Dh]` rotated for positions `[T]` (i32): x·cos + rotate_half(x)·sin, i.e. with
 * halves x₁, x₂ and the tables' rows c, s at each position: cat(x₁c − x₂s, x₂c + x₁s).
 */
export function applyRope(x: Tensor, positions: Tensor, tables: { cos: Tensor; sin: Tensor }): T {
  const dh = t(x).shape[3]!;
  const half = dh / 2;
  const c = t(tables.cos).gather(positions as never, 0 as never) as T; // [T, half], broadcast over B, H
  const s = t(tables.sin).gather(positions as never, 0 as never) as T;
  const x1 = t(x).slice([null, null, null, [0, half]]) as T;
  const x2 = t(x).slice([null, null, null, [half, dh]]) as T;
  return t(concat([x1.mul(c as never).sub(x2.mul(s as never) as never), x2.mul(c as never).add(x1.mul(s as never) as never)] as never, 3 as never));
}
