/** Element types of tensors. `bool` is stored as u32 (0/1) on the GPU. */
export type DType = "f32" | "f16" | "i32" | "u32" | "bool";

export const DTYPES: readonly DType[] = ["f32", "f16", "i32", "u32", "bool"];

export const isFloat = (d: DType): boolean => d === "f32" || d === "f16";
export const isInteger = (d: DType): boolean => d === "i32" || d === "u32";

/** Bytes per element as stored in GPU buffers and safetensors (bool as u32). */
export const byteSize = (d: DType): number => (d === "f16" ? 2 : 4);

// ---- Values of a dtype, as the float64 interpreter holds them (one number per element) ----

/** Integer arithmetic results wrap as on the GPU: i32 via `|0`, u32 via `>>>0`; bool is 0/1. */
export function wrapInt(d: DType, x: number): number {
  if (d === "i32") return x | 0;
  if (d === "u32") return x >>> 0;
  if (d === "bool") return x !== 0 ? 1 : 0;
  return x;
}

/**
 * Conversion with WGSL's semantics: float → int truncates toward zero and saturates (NaN → 0),
 * i32 ↔ u32 reinterpret the bits, anything → bool is `x != 0`, bool → number is 0/1.
 */
export function convertValue(from: DType, to: DType, x: number): number {
  if (to === "bool") return x !== 0 ? 1 : 0;
  if (to === "f32" || to === "f16") return x;
  if (isFloat(from)) {
    if (Number.isNaN(x)) return 0;
    const t = Math.trunc(x);
    return to === "i32" ? Math.min(2147483647, Math.max(-2147483648, t)) : Math.min(4294967295, Math.max(0, t));
  }
  return to === "i32" ? x | 0 : x >>> 0;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Rounds a float64 to the nearest IEEE half (ties to even); overflow gives ±Infinity. */
export function roundF16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let r: number;
  if (a >= 65520) r = Infinity; // halfway between 65504 (max half) and 2^16 rounds up
  else if (a < 2 ** -14) r = roundHalfEven(a * 2 ** 24) * 2 ** -24; // subnormals: fixed quantum
  else {
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e--;
    else if (2 ** (e + 1) <= a) e++;
    const q = 2 ** (e - 10);
    r = roundHalfEven(a / q) * q;
  }
  return x < 0 ? -r : r;
}

/** The rounding the device applies to a stored value: fround for f32, half for f16, none otherwise. */
export function roundFor(d: DType): ((x: number) => number) | undefined {
  return d === "f32" ? Math.fround : d === "f16" ? roundF16 : undefined;
}
