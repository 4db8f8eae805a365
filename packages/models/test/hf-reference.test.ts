// The models tests' own support code: the Hugging Face folder writer reads back exactly, its
// rounding is IEEE's, and the float64 references have the properties of the models they copy.

import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { readSafetensors } from "@dorafuse/runtime";
import {
  bf16Bits,
  bf16Value,
  decodeTensor,
  gpt2Config,
  llamaConfig,
  qwen2Config,
  randomGpt2Weights,
  randomLlamaWeights,
  roundTo,
  shardFileName,
  writeHfFolder,
  type FileDType,
  type Weight,
  type Weights,
} from "./support/hf-checkpoint.js";
import { applyRope, gpt2Logits, llamaLogits, ropeInvFreq } from "./support/hf-reference.js";

const folder = () => mkdtempSync(join(tmpdir(), "dorafuse-hf-"));
const SEED = 1234567;
const seedLabel = `seed ${SEED}`;
const IDS = [5, 17, 3, 88, 42, 0, 61, 96];
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a, (v, i) => Math.abs(v - b[i]!)).reduce((m, v) => Math.max(m, v), 0);
const rows = (logits: Float64Array, vocab: number, from: number, to: number) => logits.slice(from * vocab, to * vocab);
const copy = (w: Weights): Weights => new Map([...w].map(([k, v]) => [k, { shape: [...v.shape], data: v.data.slice() }]));

describe("writeHfFolder", () => {
  test.each<FileDType>(["F32", "F16", "BF16"])("a %s folder reads back with the same names, shapes and values, and a sorted config.json", async (dtype) => {
    const config = llamaConfig({ attention_bias: true, mlp_bias: true });
    const weights = randomLlamaWeights(config, { seed: SEED, dtype });
    const dir = folder();
    await writeHfFolder(dir, config, weights, { dtype });
    expect(readdirSync(dir).sort()).toEqual(["config.json", "model.safetensors"]);
    const file = await readSafetensors(join(dir, "model.safetensors"));
    expect(file.metadata).toEqual({ format: "pt" });
    expect([...file.tensors.keys()].sort()).toEqual([...weights.keys()].sort());
    for (const [name, w] of weights) {
      const t = file.tensors.get(name)!;
      expect(t.dtype, name).toBe(dtype);
      expect(t.shape, name).toEqual(w.shape);
      expect(decodeTensor(t).data, `${name}, ${seedLabel}`).toEqual(w.data);
    }
    const text = readFileSync(join(dir, "config.json"), "utf8");
    const json = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(Object.keys(json).sort());
    expect(text.endsWith("}\n")).toBe(true);
    expect(json.torch_dtype).toBe({ F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype]);
    expect(json).toMatchObject({ model_type: "llama", architectures: ["LlamaForCausalLM"], num_key_value_heads: 2, rope_scaling: null, tie_word_embeddings: false });
    expect("head_dim" in json).toBe(false);
  });

  test("a sharded folder puts every tensor in exactly one shard, in state_dict order, with the index's total_size", async () => {
    const config = gpt2Config();
    const weights = randomGpt2Weights(config, { seed: SEED, dtype: "F16" });
    const dir = folder();
    await writeHfFolder(dir, config, weights, { dtype: "F16", shards: 3 });
    const shardNames = [1, 2, 3].map((k) => shardFileName(k, 3));
    expect(shardNames[0]).toBe("model-00001-of-00003.safetensors");
    expect(readdirSync(dir).sort()).toEqual(["config.json", ...shardNames, "model.safetensors.index.json"].sort());
    const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8")) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(Object.keys(index.weight_map)).toEqual([...weights.keys()].sort());
    const seen = new Map<string, string>();
    for (const shard of shardNames) {
      const file = await readSafetensors(join(dir, shard));
      expect(file.metadata).toEqual({ format: "pt" });
      expect(file.tensors.size, shard).toBeGreaterThan(0);
      for (const [name, t] of file.tensors) {
        expect(seen.has(name), `${name} in two shards`).toBe(false);
        seen.set(name, shard);
        expect(decodeTensor(t).data, name).toEqual(weights.get(name)!.data);
      }
    }
    expect(Object.fromEntries(seen)).toEqual(index.weight_map);
    const elements = [...weights.values()].reduce((a, w) => a + w.data.length, 0);
    expect(index.metadata.total_size).toBe(2 * elements);
    expect(index.weight_map["transformer.wte.weight"]).toBe(shardNames[0]);
    expect(index.weight_map["transformer.ln_f.bias"]).toBe(shardNames[2]);
  });

  test("prefix: false drops GPT-2's outer transformer. as hub files do; tied files have no lm_head.weight", async () => {
    const config = gpt2Config();
    const weights = randomGpt2Weights(config, { seed: SEED, dtype: "F32" });
    expect(weights.has("lm_head.weight")).toBe(false);
    expect(weights.get("transformer.h.0.attn.c_attn.weight")!.shape).toEqual([32, 96]); // Conv1D: [in, out]
    const dir = folder();
    await writeHfFolder(dir, config, weights, { dtype: "F32", prefix: false });
    const file = await readSafetensors(join(dir, "model.safetensors"));
    const names = [...file.tensors.keys()].sort();
    expect(names).toEqual([...weights.keys()].map((k) => k.slice("transformer.".length)).sort());
    expect(names).toContain("h.0.attn.c_attn.weight");
    expect(names).toContain("wte.weight");
    expect(decodeTensor(file.tensors.get("h.1.mlp.c_fc.weight")!).data).toEqual(weights.get("transformer.h.1.mlp.c_fc.weight")!.data);
    expect("tie_word_embeddings" in JSON.parse(readFileSync(join(dir, "config.json"), "utf8"))).toBe(false);
  });

  test("buffers: GPT-2's causal mask and masked_bias, Llama's inv_freq, as older checkpoints carry them", async () => {
    const g = gpt2Config();
    const gDir = folder();
    await writeHfFolder(gDir, g, randomGpt2Weights(g, { seed: SEED, dtype: "BF16" }), { dtype: "BF16", prefix: false, buffers: true });
    const gFile = await readSafetensors(join(gDir, "model.safetensors"));
    const mask = gFile.tensors.get("h.1.attn.bias")!;
    expect([mask.dtype, mask.shape]).toEqual(["BF16", [1, 1, 64, 64]]);
    const m = decodeTensor(mask).data;
    expect([m[0], m[1], m[64], m[65], m[64 * 63 + 63], m[62]]).toEqual([1, 0, 1, 1, 1, 0]);
    expect(m.reduce((a, b) => a + b, 0)).toBe((64 * 65) / 2);
    const masked = gFile.tensors.get("h.0.attn.masked_bias")!;
    expect(masked.shape).toEqual([]);
    expect(decodeTensor(masked).data[0]).toBe(roundTo("BF16", -1e4));

    const u8Dir = folder();
    await writeHfFolder(u8Dir, g, randomGpt2Weights(g, { seed: SEED, dtype: "F16" }), { dtype: "F16", buffers: true, maskDType: "U8" });
    const u8 = (await readSafetensors(join(u8Dir, "model.safetensors"))).tensors.get("transformer.h.0.attn.bias")!;
    expect([u8.dtype, decodeTensor(u8).data.reduce((a, b) => a + b, 0)]).toEqual(["U8", (64 * 65) / 2]);

    const l = llamaConfig();
    const lDir = folder();
    await writeHfFolder(lDir, l, randomLlamaWeights(l, { seed: SEED, dtype: "F32" }), { dtype: "F32", buffers: true, shards: 2 });
    const index = JSON.parse(readFileSync(join(lDir, "model.safetensors.index.json"), "utf8")) as { weight_map: Record<string, string> };
    const name = "model.layers.1.self_attn.rotary_emb.inv_freq";
    const invFreq = (await readSafetensors(join(lDir, index.weight_map[name]!))).tensors.get(name)!;
    expect(invFreq.shape).toEqual([4]);
    expect(maxDiff(decodeTensor(invFreq).data, [1, 0.1, 0.01, 0.001])).toBeLessThan(1e-7);
  });

  test("weights that are not values of the file dtype are refused rather than silently rounded", async () => {
    const config = llamaConfig();
    const weights = randomLlamaWeights(config, { seed: SEED, dtype: "F32" });
    await expect(writeHfFolder(folder(), config, weights, { dtype: "BF16" })).rejects.toThrow(/is not a BF16 value/);
  });
});

describe("rounding", () => {
  test("bfloat16 rounds straight from float64 to nearest, ties to even", () => {
    const cases: [number, number][] = [
      [1, 0x3f80],
      [1 + 2 ** -8, 0x3f80], // tie, 1.0 is even
      [1 + 3 * 2 ** -8, 0x3f82], // tie, 1 + 2^-6 is even
      [1 + 2 ** -8 + 2 ** -30, 0x3f81], // just above the tie
      [1 + 2 ** -8 + 2 ** -40, 0x3f81], // float32 first would round to the tie, then to 1.0
      [-(1 + 2 ** -8), 0xbf80],
      [-0, 0x8000],
      [(2 - 2 ** -7) * 2 ** 127, 0x7f7f], // the largest bfloat16
      [(2 - 2 ** -8) * 2 ** 127, 0x7f80], // tie with 2^128, the odd mantissa loses: +Infinity
      [2 ** -133, 0x0001], // smallest subnormal
      [2 ** -134, 0x0000], // tie with 0
      [3 * 2 ** -134, 0x0002], // tie, 2 is even
      [NaN, 0x7fc0],
    ];
    for (const [x, bits] of cases) expect(bf16Bits(x).toString(16), `bf16(${x})`).toBe(bits.toString(16));
    expect(bf16Value(0x3f81)).toBe(1 + 2 ** -7);
    expect(bf16Value(0xc049)).toBe(-3.140625);
  });

  test("float16 rounding ties to even, keeps subnormals and overflows past 65504", () => {
    expect(roundTo("F16", 1 + 2 ** -11)).toBe(1);
    expect(roundTo("F16", 1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundTo("F16", 65519)).toBe(65504);
    expect(roundTo("F16", 65520)).toBe(Infinity);
    expect(roundTo("F16", 2 ** -25)).toBe(0);
    expect(roundTo("F16", 3 * 2 ** -25)).toBe(2 ** -23);
    expect(roundTo("F32", 1 + 2 ** -24)).toBe(1);
  });

  test("drawn weights are values of their dtype, spread as documented, and a seed draws the same weights", () => {
    const config = llamaConfig({ attention_bias: true });
    const w = randomLlamaWeights(config, { seed: SEED, dtype: "BF16" });
    for (const [name, t] of w) expect(t.data.every((v) => bf16Value(bf16Bits(v)) === v), name).toBe(true);
    const std = (t: Weight) => Math.sqrt(t.data.reduce((a, v) => a + v * v, 0) / t.data.length);
    expect(std(w.get("model.layers.0.mlp.up_proj.weight")!)).toBeGreaterThan(0.15);
    expect(std(w.get("model.layers.0.mlp.up_proj.weight")!)).toBeLessThan(0.25);
    expect(w.get("model.norm.weight")!.data.every((v) => v >= 0.79 && v <= 1.21)).toBe(true);
    expect(w.get("model.layers.1.self_attn.o_proj.bias")!.data.every((v) => v !== 0)).toBe(true);
    expect(randomLlamaWeights(config, { seed: SEED, dtype: "BF16" })).toEqual(w);
    expect(randomLlamaWeights(config, { seed: SEED + 1, dtype: "BF16" }).get("lm_head.weight")).not.toEqual(w.get("lm_head.weight"));
  });
});

describe("references", () => {
  test("RoPE rotates halves (rotate_half) — by hand for one head at position 1 — which interleaved pairs would not match", () => {
    const config = llamaConfig({ hidden_size: 4, num_attention_heads: 1, num_key_value_heads: 1 });
    const invFreq = ropeInvFreq(config, 2);
    expect(Array.from(invFreq)).toEqual([1, 0.01]);
    const x = Float64Array.from([0.5, -1, 2, 0.25, 1, 2, 3, 4]); // positions 0 and 1
    const y = applyRope(x, 2, 1, invFreq);
    expect(Array.from(y.subarray(0, 4))).toEqual([0.5, -1, 2, 0.25]); // position 0: the identity
    const [c1, s1, c2, s2] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
    // q·cos + rotate_half(q)·sin, rotate_half([1, 2, 3, 4]) = [−3, −4, 1, 2], emb = [1, 0.01, 1, 0.01]
    const halves = [1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1 * s1, 4 * c2 + 2 * s2];
    expect(maxDiff(y.subarray(4), halves)).toBeLessThan(1e-15);
    // Meta's original layout: pairs (x0, x1) at frequency 1 and (x2, x3) at 0.01.
    const pairs = [1 * c1 - 2 * s1, 1 * s1 + 2 * c1, 3 * c2 - 4 * s2, 3 * s2 + 4 * c2];
    expect(maxDiff(y.subarray(4), pairs)).toBeGreaterThan(0.5);
  });

  test("rope_scaling: linear divides inv_freq by the factor; llama3 keeps high frequencies, divides low ones, smooths between", () => {
    const base = { hidden_size: 32, num_attention_heads: 4 }; // head_dim 8: inv_freq 1, 0.1, 0.01, 0.001
    expect(maxDiff(ropeInvFreq(llamaConfig(base), 8), [1, 0.1, 0.01, 0.001])).toBeLessThan(1e-15);
    const linear = ropeInvFreq(llamaConfig({ ...base, rope_scaling: { type: "linear", factor: 4 } }), 8);
    expect(maxDiff(linear, [0.25, 0.025, 0.0025, 0.00025])).toBeLessThan(1e-15);
    const scaling = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    const llama3 = ropeInvFreq(llamaConfig({ ...base, rope_scaling: scaling }), 8);
    // Wavelengths 2π/f: 6.28 < 64/4 kept; 62.8 between 16 and 64 smoothed; 628 and 6283 > 64 divided by 8.
    const smooth = (64 / ((2 * Math.PI) / 0.1) - 1) / (4 - 1);
    expect(maxDiff(llama3, [1, (1 - smooth) * (0.1 / 8) + smooth * 0.1, 0.01 / 8, 0.001 / 8])).toBeLessThan(1e-15);
    expect(Array.from(ropeInvFreq(llamaConfig({ ...base, rope_scaling: { type: "dynamic", factor: 2 } }), 64))).toEqual(Array.from(ropeInvFreq(llamaConfig(base), 64)));

    const config = llamaConfig({ ...base, rope_scaling: scaling });
    const w = randomLlamaWeights(config, { seed: SEED, dtype: "F32" });
    expect(maxDiff(llamaLogits(config, w, IDS), llamaLogits(llamaConfig(base), w, IDS)), seedLabel).toBeGreaterThan(1e-3);
  });

  test.each([
    ["Llama", () => llamaConfig(), randomLlamaWeights, llamaLogits],
    ["GPT-2", () => gpt2Config(), randomGpt2Weights, gpt2Logits],
  ] as const)("%s is causal: changing a later token leaves the earlier logits unchanged, and changes its own", (_, makeConfig, draw, logitsOf) => {
    const config = makeConfig();
    const w = draw(config, { seed: SEED, dtype: "F32" });
    const changed = [...IDS];
    changed[4] = 7;
    const a = logitsOf(config, w, IDS);
    const b = logitsOf(config, w, changed);
    expect(a.length).toBe(IDS.length * 97);
    expect(rows(b, 97, 0, 4)).toEqual(rows(a, 97, 0, 4));
    expect(maxDiff(rows(b, 97, 4, 8), rows(a, 97, 4, 8)), seedLabel).toBeGreaterThan(1e-3);
  });

  test.each([
    ["Llama", () => llamaConfig(), randomLlamaWeights, llamaLogits],
    ["GPT-2", () => gpt2Config(), randomGpt2Weights, gpt2Logits],
  ] as const)("%s logits are finite and well spread (std between 0.5 and 10)", (_, makeConfig, draw, logitsOf) => {
    const logits = logitsOf(makeConfig(), draw(makeConfig(), { seed: SEED, dtype: "F32" }), IDS);
    const mean = logits.reduce((a, v) => a + v, 0) / logits.length;
    const std = Math.sqrt(logits.reduce((a, v) => a + (v - mean) ** 2, 0) / logits.length);
    expect(logits.every(Number.isFinite)).toBe(true);
    expect(std, seedLabel).toBeGreaterThan(0.5);
    expect(std, seedLabel).toBeLessThan(10);
  });

  test("grouped-query attention equals multi-head attention with each kv head repeated for its group (repeat_kv), not interleaved", () => {
    const gqa = llamaConfig(); // 4 heads, 2 kv heads, head_dim 8
    const w = randomLlamaWeights(gqa, { seed: SEED, dtype: "F32" });
    const mha = llamaConfig({ num_key_value_heads: 4 });
    const repeated = (kvHeadOf: (h: number) => number) => {
      const out = copy(w);
      for (const name of [...w.keys()].filter((k) => /\.(k|v)_proj\.weight$/.test(k))) {
        const src = w.get(name)!;
        const data = new Float64Array(4 * 8 * 32);
        for (let h = 0; h < 4; h++) data.set(src.data.subarray(kvHeadOf(h) * 8 * 32, (kvHeadOf(h) + 1) * 8 * 32), h * 8 * 32);
        out.set(name, { shape: [32, 32], data });
      }
      return out;
    };
    const expected = llamaLogits(gqa, w, IDS);
    expect(maxDiff(llamaLogits(mha, repeated((h) => Math.floor(h / 2)), IDS), expected)).toBeLessThan(1e-12);
    expect(maxDiff(llamaLogits(mha, repeated((h) => h % 2), IDS), expected), seedLabel).toBeGreaterThan(1e-3);
  });

  test("tied embeddings: no lm_head.weight, and the logits are those of an lm_head equal to the embedding", () => {
    const tied = llamaConfig({ tie_word_embeddings: true });
    const w = randomLlamaWeights(tied, { seed: SEED, dtype: "F32" });
    expect(w.has("lm_head.weight")).toBe(false);
    const untied = copy(w).set("lm_head.weight", w.get("model.embed_tokens.weight")!);
    expect(llamaLogits(llamaConfig(), untied, IDS)).toEqual(llamaLogits(tied, w, IDS));

    const g = randomGpt2Weights(gpt2Config(), { seed: SEED, dtype: "F32" });
    const gUntied = gpt2Config({ tie_word_embeddings: false });
    expect(randomGpt2Weights(gUntied, { seed: SEED, dtype: "F32" }).get("lm_head.weight")!.shape).toEqual([97, 32]);
    expect(gpt2Logits(gUntied, copy(g).set("lm_head.weight", g.get("transformer.wte.weight")!), IDS)).toEqual(gpt2Logits(gpt2Config(), g, IDS));
  });

  test("biases: Llama's attention_bias covers q, k, v and o_proj, Qwen2 has q, k, v only; head_dim may differ from hidden/heads", () => {
    const llama = randomLlamaWeights(llamaConfig({ attention_bias: true }), { seed: SEED, dtype: "F32" });
    expect(["q", "k", "v", "o"].map((p) => llama.has(`model.layers.0.self_attn.${p}_proj.bias`))).toEqual([true, true, true, true]);
    const qwen = qwen2Config();
    expect("attention_bias" in qwen).toBe(false);
    const q = randomLlamaWeights(qwen, { seed: SEED, dtype: "F32" });
    expect(["q", "k", "v", "o"].map((p) => q.has(`model.layers.0.self_attn.${p}_proj.bias`))).toEqual([true, true, true, false]);
    expect(q.get("model.layers.1.self_attn.k_proj.bias")!.shape).toEqual([16]);
    const noBias = copy(q);
    for (const p of ["q", "k", "v"]) noBias.get(`model.layers.0.self_attn.${p}_proj.bias`)!.data.fill(0);
    expect(maxDiff(llamaLogits(qwen, q, IDS), llamaLogits(qwen, noBias, IDS)), seedLabel).toBeGreaterThan(1e-3);

    const wide = llamaConfig({ head_dim: 16 });
    const ww = randomLlamaWeights(wide, { seed: SEED, dtype: "F32" });
    expect([ww.get("model.layers.0.self_attn.q_proj.weight")!.shape, ww.get("model.layers.0.self_attn.o_proj.weight")!.shape]).toEqual([
      [64, 32],
      [32, 64],
    ]);
    expect(llamaLogits(wide, ww, IDS).every(Number.isFinite)).toBe(true);
  });

  test("the references refuse a missing, misshapen or unread weight", () => {
    const config = llamaConfig();
    const w = randomLlamaWeights(config, { seed: SEED, dtype: "F32" });
    const missing = copy(w);
    missing.delete("model.layers.1.mlp.up_proj.weight");
    expect(() => llamaLogits(config, missing, IDS)).toThrow(/no weight "model.layers.1.mlp.up_proj.weight"/);
    expect(() => llamaLogits(config, copy(w).set("model.layers.0.self_attn.o_proj.bias", { shape: [32], data: new Float64Array(32) }), IDS)).toThrow(/reads no weight named model.layers.0.self_attn.o_proj.bias/);
    const g = randomGpt2Weights(gpt2Config(), { seed: SEED, dtype: "F32" });
    const c = g.get("transformer.h.0.attn.c_attn.weight")!;
    expect(() => gpt2Logits(gpt2Config(), copy(g).set("transformer.h.0.attn.c_attn.weight", { shape: [96, 32], data: c.data }), IDS)).toThrow(/has shape \[96,32\], the model needs \[32,96\]/);
  });
});
