// Causal grouped-query attention, over the sequence itself (training, a whole forward) or
// over a KV cache (generation), and the cache write. One function serves both, so the
// decode step computes exactly what the full forward computes at each position.
//
// Grouped heads as transformers' repeat_kv: query head h reads key/value head ⌊h / G⌋ with
// G = heads / kvHeads. Instead of repeating k and v G times, q is viewed as
// [B, kvHeads, G, T, Dh] and k, v as [B, kvHeads, 1, C, Dh]: the matmul broadcasts the group
// axis, and nothing of size heads × C is copied.
import { iota, softmax, where, type Tensor } from "@dorafuse/core";
import type { KvCache } from "./family.js";

type T = Tensor<number[], "f32">;
const t = (x: unknown): T => x as T;
type I = Tensor<number[], "i32">;
const i32 = (x: unknown): I => x as I;

// A finite "minus infinity" (as core's attention): exp() of it is 0 in f32.
const MASKED = -1e9;

/** `x [B, H·Dh]`-last-axis projection output `[B, T, H·Dh]` as heads `[B, H, T, Dh]`. */
export function splitHeads(x: Tensor, heads: number): T {
  const [b, s, d] = t(x).shape as [number, number, number];
  return t(x).reshape([b, s, heads, d / heads]).transpose([0, 2, 1, 3]) as T;
}

/** `[B, H, T, Dh]` → `[B, T, H·Dh]`. */
export function mergeHeads(x: Tensor): T {
  const [b, h, s, dh] = t(x).shape as [number, number, number, number];
  return t(x).transpose([0, 2, 1, 3]).reshape([b, s, h * dh]) as T;
}

/**
 * The cache `[B, KVH, C, Dh]` with `x [B, KVH, T, Dh]` written at positions start…start+T−1
 * (positions past C are dropped): an elementwise select over the cache, gathering x at
 * position − start (gather clamps, and the select keeps the cache outside the window).
 */
export function writeCache(cache: Tensor, x: Tensor, start: Tensor<[], "i32">): T {
  const [, , c] = t(cache).shape as [number, number, number, number];
  const steps = t(x).shape[2]!;
  const rel = i32(iota([c], 0, "i32")).sub(i32(start) as never) as I;
  const inside = (rel.ge(0 as never) as Tensor).and(rel.lt(steps as never) as never).reshape([1, 1, c, 1]);
  return where(inside as never, t(x).gather(rel as never, 2 as never) as never, t(cache) as never) as T;
}

/**
 * softmax(q·kᵀ·scale, causal) · v for queries `q [B, H, T, Dh]` at positions start…start+T−1
 * and keys/values `[B, KVH, C, Dh]` at positions 0…C−1: query t sees key j when
 * j ≤ start + t. Returns `[B, H, T, Dh]`.
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, opts: { start?: Tensor<[], "i32">; scale: number }): T {
  const [b, h, steps, dh] = t(q).shape as [number, number, number, number];
  const [, kvh, c] = t(k).shape as [number, number, number, number];
  const g = h / kvh;
  const qg = t(q).reshape([b, kvh, g, steps, dh]);
  const kg = t(k).reshape([b, kvh, 1, c, dh]);
  const vg = t(v).reshape([b, kvh, 1, c, dh]);
  const scores = qg.matmul(kg.mT() as never).mul(opts.scale as never) as T; // [B, KVH, G, T, C]
  let row = i32(iota([steps, c], 0, "i32"));
  if (opts.start) row = row.add(i32(opts.start) as never) as I;
  const visible = i32(iota([steps, c], 1, "i32")).le(row as never);
  const p = softmax(where(visible as never, scores as never, MASKED as never) as T);
  return t(p.matmul(vg as never)).reshape([b, h, steps, dh]) as T;
}

/** Where a layer's attention gets its keys and values: the sequence itself, or a cache. */
export type Attend = (layer: number, q: T, k: T, v: T) => T;

/** Attention over the sequence itself (a whole forward), with layer `l`'s score scale. */
export const overSequence = (scale: (layer: number) => number): Attend => (l, q, k, v) => causalAttention(q, k, v, { scale: scale(l) });

/**
 * Attention through a cache for tokens at positions start…: each layer writes its keys and
 * values into its cache first; the new caches are pushed onto `next` in layer order.
 */
export function throughCache(cache: KvCache, start: Tensor<[], "i32">, scale: (layer: number) => number, next: { k: Tensor; v: Tensor }[]): Attend {
  return (l, q, k, v) => {
    const kc = writeCache(cache.layers[l]!.k, k, start);
    const vc = writeCache(cache.layers[l]!.v, v, start);
    next.push({ k: kc, v: vc });
    return causalAttention(q, kc, vc, { start, scale: scale(l) });
  };
}

/** Positions start…start+T−1 `[T]` of the T tokens of `ids [B, T]`. */
export function positionsOf(ids: Tensor, start?: Tensor<[], "i32">): Tensor {
  const p = iota([t(ids).shape[1]!], 0, "i32") as Tensor<[number], "i32">;
  return start ? p.add(start as never) : p;
}

/** Row `last` of hidden states `[B, T, E]`, through `head`, as logits `[B, V]`. */
export function logitsAt(x: Tensor, last: Tensor<[], "i32">, head: (x: T) => T): T {
  const logits = head(t(x).gather((last as Tensor).reshape([1]) as never, 1 as never) as T);
  return logits.reshape([logits.shape[0]!, logits.shape[2]!]) as T;
}
