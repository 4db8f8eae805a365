// Random numbers from the counter-based `randomBits` primitive (threefry2x32): the same key
// gives the same numbers in the interpreter and on the GPU. Keys are u32[2] tensors, split
// functionally as in JAX — never reuse a key for two draws, split it.
import type { DType } from "../ir/dtype.js";
import { TraceError } from "../errors.js";
import { type AnyTensor, binary, emit, fill, resolveShape, scalar } from "../tensor/emit.js";
import { concat, reshape, slice } from "../tensor/layout.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Dim, Shape } from "../tensor/shape-types.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { HostTensor } from "../trace/values.js";

/** A PRNG key: two u32 words. */
export type Key = Tensor<[2], "u32">;

const T = (x: unknown): AnyTensor => x as AnyTensor;

/** A host key from a seed (an integer below 2^53), as `[high word, low word]`. */
export function randomKey(seed: number): HostTensor<[2], "u32"> {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new TraceError(`randomKey: seed must be a non-negative safe integer, found ${seed}`);
  return new HostTensor<[2], "u32">([2], Float64Array.of(Math.floor(seed / 2 ** 32), seed >>> 0), "u32");
}

/** The same key, built inside a trace. */
export function keyFromSeed(seed: number): Key {
  const [hi, lo] = randomKey(seed).data;
  return concat([fill([1], hi!, "u32"), fill([1], lo!, "u32")], 0) as unknown as Key;
}

/** Raw u32 random bits of `shape`. */
export function randomBits<const S extends readonly Dim[]>(key: Key, shape: S): Tensor<[...S], "u32"> {
  return emit("randomBits", [T(key)], { shape: resolveShape("randomBits", shape) }) as never;
}

type Keys<N extends number, Acc extends Key[] = []> = number extends N ? Key[] : Acc["length"] extends N ? Acc : Keys<N, [...Acc, Key]>;

/** `n` new keys from one (default 2), independent of each other and of draws from `key`. */
export function splitKey<const N extends number = 2>(key: Key, n?: N): Keys<N> {
  const count = n ?? 2;
  const bits = randomBits(key, [count, 2]);
  const keys: AnyTensor[] = [];
  for (let i = 0; i < count; i++) keys.push(reshape(slice(T(bits), [[i, i + 1]]), [2]));
  return keys as unknown as Keys<N>;
}

// Mixing constant so that foldIn(key, d) is not splitKey(key) of a nearby key (golden ratio, 2^32).
const FOLD = 0x9e3779b9;

/** A new key from `key` and some data (a step number, a layer index), as JAX's fold_in. */
export function foldIn(key: Key, data: number | Tensor<[], "u32" | "i32">): Key {
  const d = typeof data === "number" ? scalar(data >>> 0, "u32") : T(data).dtype === "u32" ? T(data) : emit("cast", [T(data)], { dtype: "u32" });
  const offset = concat([reshape(d, [1]), fill([1], FOLD, "u32")], 0);
  return randomBits(binary("add", T(key), offset) as unknown as Key, [2]) as unknown as Key;
}

/** Uniform in [0, 1) with 24 random bits (exact in f32): floor(bits / 2^8) · 2^-24. */
function unit(bits: AnyTensor, dtype: DType, offset = 0): AnyTensor {
  const hi = binary("div", bits, scalar(256, "u32"));
  const f = emit("cast", [hi], { dtype });
  return binary("mul", offset ? binary("add", f, scalar(offset, dtype)) : f, scalar(2 ** -24, dtype));
}

export interface UniformOptions<D extends FloatDType> {
  readonly low?: number;
  readonly high?: number;
  readonly dtype?: D;
}

/** Uniform samples in [low, high) (default [0, 1)). */
export function uniform<const S extends readonly Dim[], D extends FloatDType = "f32">(
  key: Key,
  shape: S,
  opts: UniformOptions<D> = {},
): Tensor<[...S], D> {
  const dtype = opts.dtype ?? "f32";
  const u = unit(T(randomBits(key, shape)), dtype);
  const low = opts.low ?? 0;
  const high = opts.high ?? 1;
  if (low === 0 && high === 1) return u as never;
  return binary("add", binary("mul", u, high - low), low) as never;
}

/** Standard normal samples (Box–Muller on two uniform draws), times `std` plus `mean`. */
export function normal<const S extends readonly Dim[], D extends FloatDType = "f32">(
  key: Key,
  shape: S,
  opts: { readonly mean?: number; readonly std?: number; readonly dtype?: D } = {},
): Tensor<[...S], D> {
  const dtype = opts.dtype ?? "f32";
  const dims = resolveShape("normal", shape);
  const bits = T(randomBits(key, [2, ...dims]));
  const half = (i: number): AnyTensor => reshape(slice(bits, [[i, i + 1]]), dims);
  const u1 = unit(half(0), dtype, 1); // (0, 1]: log is finite
  const u2 = unit(half(1), dtype);
  const r = emit("sqrt", [binary("mul", emit("log", [u1]), -2)]);
  let z = binary("mul", r, emit("cos", [binary("mul", u2, 2 * Math.PI)]));
  if (opts.std !== undefined && opts.std !== 1) z = binary("mul", z, opts.std);
  if (opts.mean !== undefined && opts.mean !== 0) z = binary("add", z, opts.mean);
  return z as never;
}

/** True with probability `p`. */
export function bernoulli<const S extends readonly Dim[]>(key: Key, p: number, shape: S): Tensor<[...S], "bool"> {
  return binary("lt", T(uniform(key, shape)), p) as never;
}

/**
 * Inverted dropout: zeroes each element with probability `rate` and scales the rest by
 * 1 / (1 − rate), so the expectation is unchanged. `rate` 0 returns `x`.
 */
export function dropout<S extends Shape, D extends FloatDType>(key: Key, x: Tensor<S, D>, rate: number): Tensor<S, D> {
  if (!(rate >= 0 && rate < 1)) throw new TraceError(`dropout: rate must be in [0, 1), found ${rate}`);
  if (rate === 0) return x;
  const xt = T(x);
  const keepMask = binary("ge", T(uniform(key, xt.shape, { dtype: xt.dtype as FloatDType })), rate);
  return emit("where", [keepMask, binary("mul", xt, 1 / (1 - rate)), fill(xt.shape, 0, xt.dtype)]) as never;
}
