// Model folders in Hugging Face's exact layouts, written by the tests: loaded onto the GPU,
// their logits match the float64 interpreter on the same weights, and the interpreter
// matches an independent float64 implementation written from transformers' modeling code.
import { describe, expect, it } from "vitest";
import { hostTensor, run, spec, specsOf, trace, type HostTensor } from "@dorafuse/core";
import { compile } from "@dorafuse/compiler";
import { loadHostModel, loadModel, type LoadedModel } from "../src/index.js";
import { gpt2Config, llamaConfig, qwen2Config, randomGpt2Weights, randomLlamaWeights, writeHfFolder, type FileDType, type Weights } from "./support/hf-checkpoint.js";
import { gpt2Logits, llamaLogits } from "./support/hf-reference.js";
import { read, relErr, useDevice, withSeed } from "./support/gpu.js";
import { useTempDirs } from "./support/temp.js";

const gpu = useDevice();
const tempDir = useTempDirs();

async function folder(config: Record<string, unknown>, weights: Weights, opts: { dtype: FileDType; shards?: number; prefix?: boolean; buffers?: boolean }): Promise<string> {
  const dir = await tempDir();
  await writeHfFolder(dir, config, weights, opts);
  return dir;
}

/** Logits [S, vocab] of a loaded model's whole forward on the GPU. */
async function gpuLogits(model: LoadedModel, ids: number[]): Promise<Float64Array> {
  const buffers = model.family.buffers(model.config, model.config.maxPositions);
  const fwd = (p: unknown, b: Record<string, never>, x: never) => model.family.forward(p, b, x, model.config);
  const f = await compile(fwd as never, [model.params, buffers, spec([1, ids.length], "i32")], { device: gpu.device });
  const out = await read(await f(model.params, buffers, hostTensor([1, ids.length], ids, "i32")));
  f.dispose();
  return out;
}

/** The same forward in the float64 interpreter, on the weights as loaded on the host. */
async function interpreterLogits(dir: string, ids: number[]): Promise<Float64Array> {
  const m = await loadHostModel(dir);
  const buffers = m.family.buffers(m.config, m.config.maxPositions);
  const fwd = (p: unknown, b: Record<string, never>, x: never) => m.family.forward(p, b, x, m.config);
  const x = hostTensor([1, ids.length], ids, "i32");
  return (run(trace(fwd as never, [specsOf(m.params), specsOf(buffers), spec([1, ids.length], "i32")]), [m.params, buffers, x] as never) as unknown as HostTensor).data;
}

const cases: { name: string; config: () => Record<string, unknown>; weights: (c: Record<string, unknown>, seed: number, dtype: FileDType) => Weights; reference: typeof llamaLogits; dtype: FileDType; shards?: number; prefix?: boolean; buffers?: boolean }[] = [
  { name: "Llama with grouped-query attention, BF16, separate lm_head", config: () => llamaConfig(), weights: (c, seed, dtype) => randomLlamaWeights(c, { seed, dtype }), reference: llamaLogits, dtype: "BF16" },
  { name: "Llama with tied embeddings, head_dim given, attention biases, sharded in 3, inv_freq buffers", config: () => llamaConfig({ tie_word_embeddings: true, head_dim: 16, attention_bias: true }), weights: (c, seed, dtype) => randomLlamaWeights(c, { seed, dtype }), reference: llamaLogits, dtype: "F32", shards: 3, buffers: true },
  { name: "Qwen2 (q/k/v biases, no o_proj bias), F16", config: () => qwen2Config(), weights: (c, seed, dtype) => randomLlamaWeights(c, { seed, dtype }), reference: llamaLogits, dtype: "F16" },
  { name: "Llama 3 rope scaling", config: () => llamaConfig({ rope_theta: 500000, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } }), weights: (c, seed, dtype) => randomLlamaWeights(c, { seed, dtype }), reference: llamaLogits, dtype: "F32" },
  { name: "GPT-2 with the hub's names (no transformer. prefix) and its attn.bias masks", config: () => gpt2Config(), weights: (c, seed, dtype) => randomGpt2Weights(c, { seed, dtype }), reference: gpt2Logits, dtype: "F32", prefix: false, buffers: true },
  { name: "GPT-2 as save_pretrained writes it (transformer. prefix), sharded in 2, BF16", config: () => gpt2Config(), weights: (c, seed, dtype) => randomGpt2Weights(c, { seed, dtype }), reference: gpt2Logits, dtype: "BF16", shards: 2 },
];

describe.each(cases)("$name", (c) => {
  it("loads, and its logits on the GPU match the float64 interpreter, which matches transformers' computation", () =>
    withSeed(async (rng) => {
      const config = c.config();
      const weights = c.weights(config, rng.int(0, 1 << 30), c.dtype);
      const dir = await folder(config, weights, { dtype: c.dtype, ...(c.shards ? { shards: c.shards } : {}), ...(c.prefix === false ? { prefix: false } : {}), ...(c.buffers ? { buffers: true } : {}) });
      const model = await loadModel(dir, gpu.device, { dtype: "f32" });
      const ids = Array.from({ length: 9 }, () => rng.int(0, (config.vocab_size as number) - 1));
      const [onGpu, interp] = [await gpuLogits(model, ids), await interpreterLogits(dir, ids)];
      expect(relErr(onGpu, interp)).toBeLessThan(1e-5);
      expect(relErr(interp, c.reference(config, weights, ids))).toBeLessThan(1e-6);
      if (c.buffers) expect(model.weights.skipped.length).toBeGreaterThan(0);
    }));
});

describe("f16 base weights", () => {
  it("keep the matrices in f16 on the GPU (half the bytes), norms and biases f32, and give the f32 model's logits within f16 rounding", () =>
    withSeed(async (rng) => {
      const config = llamaConfig({ attention_bias: true });
      const weights = randomLlamaWeights(config, { seed: rng.int(0, 1 << 30), dtype: "F32" });
      const dir = await folder(config, weights, { dtype: "F32" });
      const f16 = await loadModel(dir, gpu.device, { dtype: "f16" });
      const f32 = await loadModel(dir, gpu.device, { dtype: "f32" });
      const layer = (f16.params as { model: { layers: { self_attn: { q_proj: { w: { dtype: string }; b: { dtype: string } } }; input_layernorm: { gamma: { dtype: string } } }[] } }).model.layers[0]!;
      expect([layer.self_attn.q_proj.w.dtype, layer.self_attn.q_proj.b.dtype, layer.input_layernorm.gamma.dtype]).toEqual(["f16", "f32", "f32"]);
      expect(f32.weights.bytes).toBe(f32.weights.f32Bytes);
      expect(f16.weights.bytes).toBeLessThan(0.55 * f16.weights.f32Bytes);
      const ids = Array.from({ length: 7 }, () => rng.int(0, (config.vocab_size as number) - 1));
      const ref = llamaLogits(config, weights, ids);
      const err16 = relErr(await gpuLogits(f16, ids), ref);
      expect(err16).toBeLessThan(5e-3);
      expect(err16).toBeGreaterThan(1e-6); // it really ran on rounded weights
      expect(relErr(await gpuLogits(f32, ids), ref)).toBeLessThan(1e-5);
    }));
});
