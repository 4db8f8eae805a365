// How each plan dtype is stored on the GPU and held on the host.
//
// - f32, i32, u32: 4 bytes, Float32Array / Int32Array / Uint32Array.
// - f16: 2 bytes on the GPU (needs `shader-f16` in kernels); Node 20 has no Float16Array,
//   so the host holds the raw IEEE half bits in a Uint16Array (see f32ToF16 / f16ToF32).
// - bool: WGSL cannot put `bool` in a storage buffer, so the GPU holds a u32 per element
//   (0 or 1). The host holds one byte per element in a Uint8Array, like numpy and the
//   safetensors BOOL dtype; upload widens and read-back narrows.

import type { PlanDType } from "./plan.js";

/** What the runtime hands back for a tensor of each dtype. */
export interface HostArrayOf {
  f32: Float32Array;
  f16: Uint16Array;
  i32: Int32Array;
  u32: Uint32Array;
  bool: Uint8Array;
}

export type HostArray = HostArrayOf[PlanDType];

export const PLAN_DTYPES: readonly PlanDType[] = ["f32", "f16", "i32", "u32", "bool"];

/** Bytes per element in GPU memory. */
export function gpuByteSize(dtype: PlanDType): number {
  return dtype === "f16" ? 2 : 4;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Round a byte count up to WebGPU's copy granularity. */
export function align4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

const hostArrayName: Record<PlanDType, string> = {
  f32: "Float32Array",
  f16: "Uint16Array (half-precision bits)",
  i32: "Int32Array",
  u32: "Uint32Array",
  bool: "Uint8Array (or Uint32Array) of 0/1",
};

export function describeHostArray(dtype: PlanDType): string {
  return hostArrayName[dtype];
}

/** Whether `data` is the host form of `dtype` (bool also accepts a Uint32Array of 0/1). */
export function isHostArrayOf(dtype: PlanDType, data: ArrayBufferView): boolean {
  switch (dtype) {
    case "f32":
      return data instanceof Float32Array;
    case "f16":
      return data instanceof Uint16Array;
    case "i32":
      return data instanceof Int32Array;
    case "u32":
      return data instanceof Uint32Array;
    case "bool":
      return data instanceof Uint8Array || data instanceof Uint32Array;
  }
}

/** The bytes to put in a GPU buffer for host data already checked with isHostArrayOf. */
export function toGpuBytes(dtype: PlanDType, data: ArrayBufferView): Uint8Array {
  if (dtype === "bool" && data instanceof Uint8Array) {
    const wide = new Uint32Array(data.length);
    for (let i = 0; i < data.length; i++) wide[i] = data[i] ? 1 : 0;
    return new Uint8Array(wide.buffer);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The host array for `count` elements of `dtype` read from GPU bytes (copied, so it owns its memory). */
export function fromGpuBytes<D extends PlanDType>(dtype: D, bytes: ArrayBuffer, count: number): HostArrayOf[D] {
  const need = count * gpuByteSize(dtype);
  const own = bytes.byteLength === need ? bytes : bytes.slice(0, need);
  switch (dtype) {
    case "f32":
      return new Float32Array(own) as HostArrayOf[D];
    case "f16":
      return new Uint16Array(own) as HostArrayOf[D];
    case "i32":
      return new Int32Array(own) as HostArrayOf[D];
    case "u32":
      return new Uint32Array(own) as HostArrayOf[D];
    case "bool": {
      const wide = new Uint32Array(own);
      const narrow = new Uint8Array(count);
      for (let i = 0; i < count; i++) narrow[i] = wide[i] ? 1 : 0;
      return narrow as HostArrayOf[D];
    }
  }
  throw new Error(`unreachable dtype ${String(dtype)}`);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits of each value, rounded to nearest even (as the GPU converts). */
export function f32ToF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = halfBits(values[i]!);
  return out;
}

function halfBits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** Float32 values of IEEE binary16 bits (exact: every half is a float). */
export function f16ToF32(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) out[i] = mant ? NaN : sign * Infinity;
    else out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** BF16 is the upper half of an f32: widening is exact. */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
  return new Float32Array(out.buffer);
}

/** bfloat16 bits, rounded to nearest even from f32. */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = bits[i]!;
    out[i] = (b & 0x7f800000) === 0x7f800000 && b & 0x7fffff ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}
