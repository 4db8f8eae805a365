// What every DoRA kernel needs to know about its layer, and the WGSL helpers they share: one
// reader function per input (`in_x(i)`, …), the writer of the packed output, the guarded norm
// and the dropout multiplier — each printed once per module, named, so kernels read like the
// math in DESIGN.md.
import { doraLayout, THREEFRY_WGSL, wgslLiteral, type DoraAttrs, type DoraLayout, type Node } from "@dorafuse/core";
import type { CustomBodyContext } from "../kernels/custom.js";

export interface Layer extends DoraLayout {
  attrs: DoraAttrs;
}

/** The layer of a DoRA node whose x, W and A are `x`, `w`, `a`. */
export function layerOf(node: Node, x: Node, w: Node, a: Node): Layer {
  const attrs = node.attrs as unknown as DoraAttrs;
  const [out, inDim] = w.shape as [number, number];
  const n = x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  return { ...doraLayout(n, inDim, out, a.shape[0]!, attrs.detach), attrs };
}

/** An f32 literal. */
export const f32 = (v: number): string => wgslLiteral(v, "f32");

/** Declares `in_<name>(i)` for each named input (by position; undefined skips one). */
export function readers(ctx: CustomBodyContext, names: readonly (string | undefined)[]): void {
  names.forEach((name, k) => {
    if (!name) return;
    const t = ctx.node.inputs[k]!;
    const type = t.dtype === "u32" ? "u32" : "f32";
    // an f16 input (a frozen W) is read as f32
    const value = t.dtype === "f16" ? `f32(${ctx.input(k, "i")})` : ctx.input(k, "i");
    ctx.fn(`in_${name}`, `fn in_${name}(i: u32) -> ${type} {\n  return ${value};\n}`);
  });
  ctx.fn("put", `fn put(i: u32, v: f32) {\n  ${ctx.output("i", "v")}\n}`);
}

/** `dora_norm(n2)`: n = √(max(n², 0) + ε), the guard DESIGN.md and core's adapters use. */
export function normFn(ctx: CustomBodyContext, layer: Layer): void {
  const { clamp, eps } = layer.attrs;
  ctx.fn("dora_norm", `fn dora_norm(n2: f32) -> f32 {\n  return sqrt(${clamp ? "max(n2, 0.0)" : "n2"} + ${f32(eps)});\n}`);
}

/**
 * `dora_mask(i)`: the dropout multiplier of x's flat element i — 1/(1 − rate) where the
 * uniform draw of the key is ≥ rate, else 0; the bits ops/random.ts dropout draws (threefry
 * word 0 at counter (i, 0), 24 bits).
 */
export function maskFn(ctx: CustomBodyContext, layer: Layer, keyInput: string): void {
  const { rate } = layer.attrs;
  ctx.fn("df_threefry", THREEFRY_WGSL);
  ctx.fn(
    "dora_mask",
    `fn dora_mask(i: u32) -> f32 {
  let bits = df_threefry2x32(vec2<u32>(in_${keyInput}(0u), in_${keyInput}(1u)), vec2<u32>(i, 0u)).x;
  let u = f32(bits / 256u) * ${f32(2 ** -24)};
  return select(0.0, ${f32(1 / (1 - rate))}, u >= ${f32(rate)});
}`,
  );
}

/** The adapter's input x' at flat element `i`: x, or x times its dropout multiplier. */
export const adapterInput = (layer: Layer, i: string): string => (layer.attrs.rate > 0 ? `in_x(${i}) * dora_mask(${i})` : `in_x(${i})`);

/** Workgroup memory an adapter allows, in floats. */
export const smemFloats = (ctx: CustomBodyContext): number => Math.floor(ctx.limits.maxComputeWorkgroupStorageSize / 4);
